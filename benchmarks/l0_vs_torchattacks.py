"""fcrattack's L0 baselines (JSMA, One-Pixel) against torchattacks 3.5.1, same model, images
and settings.

In one process, on the real ResNet-20 (akamaster, ../shared/models) and the first ``--n`` JPEG
CIFAR-10 test images it classifies correctly, runs:

- JSMA (theta = 1, gamma = ``--gamma``): torchattacks' JSMA has no true untargeted mode (it aims
  at (y + 1) % 10 and stops only there), so it is compared with ours *targeted* at the same
  classes; ours untargeted (runner-up class, stops once the prediction leaves y) is shown too.
- One-Pixel (``--pixels`` pixels, ``--popsize``, ``--steps`` generations). torchattacks' popsize
  is a multiplier of the number of DE parameters (pixels * 5), so its population is
  max(1, popsize // (5 * pixels)) * 5 * pixels; ours is given that same population, with
  Su et al.'s DE/rand/1 and with best1 (our default; torchattacks' scipy best1bin).
- The forward-pass bound of One-Pixel: plain forward passes of CIFAR images at batch sizes
  16 .. 8192 are timed; bound = (candidates our One-Pixel evaluated) x (best seconds per image),
  throughput = bound / our time. torchattacks evaluates at that best batch size (its
  ``inf_batch``), ours at its default evaluation chunk (picked by device, not tuned here).
- JSMA on a 224 x 224 input (a random-weight ResNet-18-like conv net, batch 2, ``--steps-224``
  iterations): time and peak memory; torchattacks' JSMA would need (3*224*224)^2 floats per
  pairwise table, which is only reported.

Printed as Markdown tables: ASR (untargeted success, pred != y, over all images; targeted hit
rate in brackets), mean L0 / L0 pixels / L2 over successful images ([0, 1] scale), wall and
process-CPU seconds, peak memory above the pre-attack level, and ours / theirs time ratio (CPU
time on the CPU, where wall time mostly measures other processes; wall time on CUDA). The
timing and memory helpers are those of ``baselines_vs_torchattacks.py`` beside this file.

    python benchmarks/l0_vs_torchattacks.py --n 20 --popsize 20 --steps 10
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from baselines_vs_torchattacks import clock, since, timed
from fcrattack.attacks import JSMA, OnePixel
from fcrattack.data import cifar10, shared_root
from fcrattack.metrics import perturbation_norms, summarize
from fcrattack.models import load_checkpoint

SHARED = shared_root()


def row(name: str, impl: str, x, x_adv, y, model, target, sec, mem, ratio: str = "") -> str:
    """One Markdown row from the adversarial images (metrics from a fresh forward pass)."""
    with torch.no_grad():
        pred = model(x_adv).argmax(1)
    ok = (pred != y).cpu()
    hit = "" if target is None else f" [{100 * float((pred == target).float().mean()):.0f}]"
    s = summarize(perturbation_norms(x.cpu(), x_adv.cpu()), ok)
    return (
        f"| {name} | {impl} | {100 * s['asr']:.1f}{hit} | {s['l0']:.1f} | "
        f"{s['l0_pixels']:.1f} | {s['l2']:.3f} | {sec[0]:.2f} | {sec[1]:.2f} | "
        f"{mem / 2**20:.1f} | {ratio} |"
    )


def forward_seconds_per_image(
    model: nn.Module, x: torch.Tensor, device: torch.device, total: int = 8192
) -> tuple[float, int]:
    """(best seconds per image, its batch size) of plain no-grad forward passes."""
    best = (float("inf"), 0)
    for bs in (16, 32, 64, 128, 256, 1024, 4096, 8192):
        batch = x[torch.arange(bs, device=x.device) % len(x)]
        with torch.no_grad():
            model(batch[:2])
            start = clock()
            for _ in range(max(1, total // bs)):
                model(batch)
            sec = since(start, device)
        k = 0 if device.type == "cuda" else 1
        best = min(best, (sec[k] / (max(1, total // bs) * bs), bs))
    return best


class ConvNet224(nn.Module):
    """A random-weight ResNet-18-sized stem and stages for 224 x 224 inputs (no residuals)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, 64, 7, 2, 3),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        ]
        for cin, cout in ((64, 64), (64, 128), (128, 256), (256, 512)):
            stride = 1 if cin == cout else 2
            layers += [
                nn.Conv2d(cin, cout, 3, stride, 1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean((2, 3)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="correctly classified test images")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--gamma", type=float, default=0.1, help="JSMA's max changed fraction")
    parser.add_argument("--pixels", type=int, default=5)
    parser.add_argument("--popsize", type=int, default=20, help="torchattacks' popsize argument")
    parser.add_argument("--steps", type=int, default=10, help="DE generations")
    parser.add_argument("--steps-224", type=int, default=2, help="JSMA iterations at 224 px")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--skip-jsma",
        action="store_true",
        help="One-Pixel only (torchattacks' JSMA takes ~12 s per CIFAR image)",
    )
    args = parser.parse_args()
    import numpy as np
    import torchattacks

    np.random.seed(0)  # torchattacks' DE draws from numpy's global RNG: make its run repeatable

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    k = 0 if device.type == "cuda" else 1  # the ratio compares wall (CUDA) or CPU seconds
    weights = next((SHARED / "models" / "cifar10-resnet-akamaster").glob("resnet20-*.th"))
    model = load_checkpoint(weights, "resnet20").to(device).eval()
    data = cifar10(SHARED / "data" / "cifar10-jpeg", "test", n=max(4 * args.n, 200), seed=0)
    with torch.no_grad():
        ok = model(data.images.to(device)).argmax(1).cpu() == data.labels
    x, y = data.images[ok][: args.n].to(device), data.labels[ok][: args.n].to(device)
    shifted = (y + 1) % 10
    n_params = 5 * args.pixels
    population = max(1, args.popsize // n_params) * n_params

    print(
        f"ResNet-20 (akamaster), {len(x)} correctly classified JPEG CIFAR-10 test images, "
        f"device {device}, {torch.get_num_threads()} CPU threads. JSMA theta 1, gamma "
        f"{args.gamma}; One-Pixel {args.pixels} px, population {population}, {args.steps} "
        "generations. ASR: pred != y over all images [targeted hit rate]; norms on [0, 1], "
        "means over successful images; peak memory above the pre-attack level.\n"
    )
    print(
        "| attack | impl | ASR % [hit %] | L0 | L0 px | L2 | wall s | CPU s | peak MiB | "
        "time ratio ours/theirs |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    if not args.skip_jsma:
        ours_t = JSMA(model, gamma=args.gamma, targeted=True)
        ours_u = JSMA(model, gamma=args.gamma)
        theirs = torchattacks.JSMA(model, theta=1.0, gamma=args.gamma)
        ours_t.run(x[:2], y[:2], target=shifted[:2])  # warm-up
        r_t, s_t, m_t = timed(lambda: ours_t.run(x, y, target=shifted).x_adv, device)
        r_u, s_u, m_u = timed(lambda: ours_u.run(x, y).x_adv, device)
        r_th, s_th, m_th = timed(lambda: theirs(x, y), device)
        print(
            row(
                "jsma (y+1)%10",
                "fcrattack",
                x,
                r_t.to(device),
                y,
                model,
                shifted,
                s_t,
                m_t,
                f"{s_t[k] / s_th[k]:.3f}",
            )
        )
        print(row("jsma (y+1)%10", "torchattacks", x, r_th, y, model, shifted, s_th, m_th))
        print(
            row(
                "jsma untargeted",
                "fcrattack",
                x,
                r_u.to(device),
                y,
                model,
                None,
                s_u,
                m_u,
                f"{s_u[k] / s_th[k]:.3f}",
            )
        )

    per_image, bs = forward_seconds_per_image(model, x, device)
    theirs_op = torchattacks.OnePixel(
        model, pixels=args.pixels, steps=args.steps, popsize=args.popsize, inf_batch=bs
    )
    r_oth, s_oth, m_oth = timed(lambda: theirs_op(x, y), device)
    bounds = []
    for strategy in ("rand1", "best1"):
        ours_op = OnePixel(
            model, pixels=args.pixels, popsize=population, steps=args.steps, strategy=strategy
        )
        ours_op.run(x[:2], y[:2])  # warm-up
        before = ours_op.evaluations
        r_o, s_o, m_o = timed(lambda op=ours_op: op.run(x, y).x_adv, device)
        print(
            row(
                f"onepixel {strategy}",
                "fcrattack",
                x,
                r_o.to(device),
                y,
                model,
                None,
                s_o,
                m_o,
                f"{s_o[k] / s_oth[k]:.3f}",
            )
        )
        bounds.append((strategy, ours_op.evaluations - before, s_o[k]))
    print(row("onepixel best1bin", "torchattacks", x, r_oth, y, model, None, s_oth, m_oth))

    print(
        f"\nOne-Pixel forward-pass bound ({'wall' if k == 0 else 'CPU'} time): plain "
        f"forward {1e3 * per_image:.3f} ms/image at the best batch size {bs} (torchattacks' "
        f"inf_batch; ours evaluates {ours_op.eval_chunk(x)} candidates per pass); at most "
        f"{len(x) * population * (args.steps + 1)} candidates per run."
    )
    for strategy, evaluations, sec in bounds:
        print(
            f"- {strategy}: {evaluations} candidates evaluated, bound "
            f"{evaluations * per_image:.2f} s, ours {sec:.2f} s: throughput "
            f"{evaluations * per_image / sec:.2f} x the bound"
        )

    if not args.skip_jsma:
        net = ConvNet224().to(device).eval()
        x224 = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            y224 = net(x224).argmax(1)
        big = JSMA(net, steps=args.steps_224)
        r_b, s_b, m_b = timed(lambda: big.run(x224, y224).x_adv, device)
        n_feat = x224[0].numel()
        l0 = perturbation_norms(x224.cpu(), r_b)["l0"].tolist()
        print(
            f"\nJSMA at 224 x 224 (random-weight conv net, batch 2, {args.steps_224} "
            f"iterations): {s_b[0]:.2f} s wall / {s_b[1]:.2f} s CPU, peak "
            f"{m_b / 2**20:.1f} MiB above the pre-attack level, L0 per image {l0}. "
            f"torchattacks' JSMA builds ({n_feat} x {n_feat}) pairwise tables: "
            f"{n_feat**2 * 4 / 2**30:.0f} GiB per float32 table (not run)."
        )


if __name__ == "__main__":
    main()
