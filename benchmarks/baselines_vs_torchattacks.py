"""fcrattack's gradient baselines against torchattacks 3.5.1, same model, images and settings.

Runs, in one process, each of our attacks (FGSM, PGD, PGD-L2, M-DI2-FGSM, C&W) and
torchattacks' counterpart (FGSM, PGD, PGDL2, DIFGSM with decay 1.0, CW) on the real ResNet-20
(akamaster, ../shared/models) and the first ``--n`` JPEG CIFAR-10 test images it classifies
correctly, and prints a Markdown table: ASR, mean L2 / Linf / L0 over successful images ([0, 1]
scale), wall time, peak memory above the pre-attack level, and the time ratio ours / theirs.

Times: "ours" is the attack itself (``perturb``), "ours run()" adds fcrattack's input checks,
content-hash seeding and its three evaluation forwards (clean, re-check, 8-bit re-check);
"theirs" is torchattacks' call. Both wall time and process CPU time are reported; on a shared
CPU, wall time mostly measures the other processes, so the ratio uses CPU time there (wall time
on CUDA). After a warm-up on 2 images, each attack runs ``--repeats`` times alternating ours /
theirs; minima of time and memory are reported. Memory: torch.cuda.max_memory_allocated on
CUDA; on the CPU the peak resident set size sampled every 2 ms by a thread (/proc/self/statm),
minus the level before.

    python benchmarks/baselines_vs_torchattacks.py --n 100 --cw-steps 100
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import torch

from fcrattack.attacks import ATTACKS
from fcrattack.data import cifar10, shared_root
from fcrattack.metrics import perturbation_norms, summarize
from fcrattack.models import load_checkpoint

SHARED = shared_root()
NAMES = ("fgsm", "pgd", "pgdl2", "mifgsm", "cw")


def settings(name: str, cw_steps: int) -> tuple[dict, dict]:
    """(our keyword arguments, torchattacks' keyword arguments) for one attack."""
    return {
        "fgsm": ({"eps": 8 / 255}, {"eps": 8 / 255}),
        "pgd": (
            {"eps": 16 / 255, "steps": 20, "step_size": 2 / 255, "random_start": True},
            {"eps": 16 / 255, "alpha": 2 / 255, "steps": 20, "random_start": True},
        ),
        "pgdl2": (
            {"eps": 0.5, "steps": 20, "step_size": 0.1, "random_start": True},
            {"eps": 0.5, "alpha": 0.1, "steps": 20, "random_start": True},
        ),
        "mifgsm": (
            {
                "eps": 16 / 255,
                "steps": 20,
                "step_size": 2 / 255,
                "decay": 1.0,
                "diversity_prob": 0.5,
            },
            {
                "eps": 16 / 255,
                "alpha": 2 / 255,
                "steps": 20,
                "decay": 1.0,
                "diversity_prob": 0.5,
                "resize_rate": 0.9,
            },
        ),
        "cw": (
            {"c": 1.0, "kappa": 0.0, "lr": 0.01, "steps": cw_steps},
            {"c": 1.0, "kappa": 0.0, "lr": 0.01, "steps": cw_steps},
        ),
    }[name]


def theirs_class(name: str):
    import torchattacks

    return {
        "fgsm": torchattacks.FGSM,
        "pgd": torchattacks.PGD,
        "pgdl2": torchattacks.PGDL2,
        "mifgsm": torchattacks.DIFGSM,
        "cw": torchattacks.CW,
    }[name]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory (bytes) above the level at entry, on ``device``."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.peak = device, 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.top = rss_bytes()
            self.done = threading.Event()
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.002):
            self.top = max(self.top, rss_bytes())

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self.done.set()
            self.thread.join()
            self.peak = max(self.top, rss_bytes()) - self.base


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float], device: torch.device) -> tuple[float, float]:
    """(wall, CPU) seconds since ``start``."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = clock()
    return wall - start[0], cpu - start[1]


def timed(fn, device: torch.device):
    """(result, (wall, CPU) seconds, peak bytes) of fn()."""
    with PeakMemory(device) as mem:
        start = clock()
        out = fn()
        seconds = since(start, device)
    return out, seconds, mem.peak


def measure(model, x, y, name, cw_steps, device, repeats):
    """One table row: metrics and best-of-``repeats`` timings of ours and torchattacks'."""
    ours_kw, theirs_kw = settings(name, cw_steps)
    ours = ATTACKS[name](model, **ours_kw)
    core = []
    inner = ours.perturb

    def perturb(*args, **kwargs):
        start = clock()
        out = inner(*args, **kwargs)
        core.append(since(start, device))
        return out

    ours.perturb = perturb
    theirs = theirs_class(name)(model, **theirs_kw)
    ours.run(x[:2], y[:2])  # warm-up: first-call allocations and kernel selection
    core.pop()
    theirs(x[:2], y[:2])
    t_run, t_core, t_theirs, m_ours, m_theirs = [], [], [], [], []
    for _ in range(repeats):
        result, sec, mem = timed(lambda: ours.run(x, y), device)
        t_run.append(sec)
        t_core.append(core.pop())
        m_ours.append(mem)
        x_theirs, sec, mem = timed(lambda: theirs(x, y), device)
        t_theirs.append(sec)
        m_theirs.append(mem)
    with torch.no_grad():
        ok_theirs = (model(x_theirs).argmax(1) != y).cpu()
    s_ours = result.summary()
    s_theirs = summarize(perturbation_norms(x.cpu(), x_theirs.cpu()), ok_theirs)
    best = [tuple(min(col) for col in zip(*t)) for t in (t_core, t_run, t_theirs)]
    return s_ours, s_theirs, *best, min(m_ours), min(m_theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100, help="correctly classified test images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--attacks", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}"
    )
    parser.add_argument("--cw-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [a.strip() for a in args.attacks.split(",") if a.strip()]
    unknown = set(names) - set(NAMES)
    if unknown:
        parser.error(f"unknown attacks {sorted(unknown)}; choose from {NAMES}")
    device = torch.device(args.device)
    weights = next((SHARED / "models" / "cifar10-resnet-akamaster").glob("resnet20-*.th"))
    model = load_checkpoint(weights, "resnet20").to(device)
    data = cifar10(SHARED / "data" / "cifar10-jpeg", "test", n=max(4 * args.n, 200), seed=0)
    with torch.no_grad():
        ok = model(data.images.to(device)).argmax(1).cpu() == data.labels
    x, y = data.images[ok][: args.n].to(device), data.labels[ok][: args.n].to(device)

    print(
        f"ResNet-20 (akamaster), {len(x)} correctly classified JPEG CIFAR-10 test images, "
        f"device {device}, {torch.get_num_threads()} CPU threads, C&W {args.cw_steps} steps; "
        "norms on the [0, 1] scale, means over successful images; time best of "
        f"{args.repeats}.\n"
    )
    print(
        "| attack | impl | ASR % | L2 | Linf*255 | L0 | wall s | CPU s | run() wall/CPU s | "
        "peak MiB | ratio ours/theirs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    k = 0 if device.type == "cuda" else 1  # what the ratio compares: wall or CPU seconds
    for name in names:
        s_o, s_t, core, run, theirs, m_o, m_t = measure(
            model, x, y, name, args.cw_steps, device, args.repeats
        )
        for impl, s, sec, run_s, mem, ratio in (
            (
                "fcrattack",
                s_o,
                core,
                f"{run[0]:.2f} / {run[1]:.2f}",
                m_o,
                f"{core[k] / theirs[k]:.2f}",
            ),
            ("torchattacks", s_t, theirs, "", m_t, ""),
        ):
            print(
                f"| {name} | {impl} | {100 * s['asr']:.1f} | {s['l2']:.3f} | "
                f"{255 * s['linf']:.2f} | {s['l0']:.0f} | {sec[0]:.2f} | {sec[1]:.2f} | "
                f"{run_s} | {mem / 2**20:.1f} | {ratio} |"
            )


if __name__ == "__main__":
    main()
