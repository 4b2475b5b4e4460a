#!/usr/bin/env python
"""fcrattack's region attack (``RegionDDN``) against adv-lib's minimum-norm attacks.

adv-lib 0.2.8 (by the author of DDN) is the reference: ``ddn`` (levels=None), ``fmn``
(norm=2) and ``alma`` (distance="l2"), at the same step budgets, on the same images and
models, on the whole image (t = 0) and inside the FCR mask (t = 0.2, 0.5: Grad-CAM of the true
class >= t). adv-lib's attacks take no mask: they are restricted by wrapping the model so that
it sees x + mask * (x_adv - x), and their output is projected the same way; L2 is measured on
the projected perturbation. adv-lib is a benchmark-only reference: install it with
``pip install --no-deps adv-lib==0.2.8``. It imports torchvision (for LPIPS) and visdom (for
plots) at import time, for features not used here: this process puts minimal stand-in modules
for those two on ``sys.path`` (and says so in its output); fcrattack itself never imports them.

Per (model, t, budget) the four attacks run one after the other on one batch (ours and FMN
next to each other, after an untimed warm-up); per attack: ASR (fresh forward pass), mean and
median L2 over its successful images, the paired mean over the images all four attacks fooled,
and the wall time of the call (ours: ``RegionDDN.run``, which also runs its re-check forward
passes of success and of 8-bit success, and one image's forward pass for the number of
classes). A single call's time varies by 10-30 % on a shared CPU, so the time ratio is measured
separately with ``--timing``: ours and FMN called alternately; the medians of each and of the
per-pair ratios.

    pip install --no-deps adv-lib==0.2.8
    python benchmarks/minnorm_vs_advlib.py --out runs/minnorm.json     # the cpu plan
    python benchmarks/minnorm_vs_advlib.py --timing 11 --threads 1 --clock cpu  # time only
    python benchmarks/minnorm_vs_advlib.py --plan full --device cuda    # every row at full size

Plans: ``cpu`` (default; 37.5 minutes on the project's 2-core CPU, 15 of them the
EfficientNet-Lite0 rows): ResNet-20 and ResNet-32 on 100 images at 20 steps (t = 0, 0.2, 0.5),
50 steps (t = 0) and 100 steps (t = 0, 0.2), and on 8 images at 1,000 steps (t = 0);
EfficientNet-Lite0 on 50 images at 20 steps (t = 0, 0.2). ``full``: every model at every budget
and t, 100 images (50 for Lite0): a GPU's work. ``--timing 11``: about 15 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fcrattack import RegionDDN
from fcrattack.cam import fcr_region
from fcrattack.data import Dataset, cifar10, imagenet_folder, shared_root
from fcrattack.models import default_model, load_checkpoint, load_model

ATTACKS = ("region-ddn (ours)", "adv-lib fmn", "adv-lib ddn", "adv-lib alma")
OURS, FMN = ATTACKS[0], ATTACKS[1]


def standins() -> Path:
    """A folder with minimal torchvision and visdom modules, for adv-lib's imports."""
    root = Path(tempfile.mkdtemp(prefix="advlib-standins-"))
    (root / "torchvision").mkdir()
    (root / "torchvision" / "__init__.py").write_text("models = None  # stand-in\n")
    (root / "visdom").mkdir()
    (root / "visdom" / "__init__.py").write_text("class Visdom:  # stand-in\n    pass\n")
    return root


class Masked(nn.Module):
    """The model seeing only the masked part of a perturbation of x."""

    def __init__(self, model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__()
        self.model, self.x, self.mask = model, x, mask

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(self.x + self.mask * (z - self.x))


def load(name: str, n: int, device: torch.device) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model and its first n correctly classified images (seeded subset, seed 0)."""
    root = shared_root()
    data: Dataset
    if name == "resnet20-default":
        model = default_model()
        data = cifar10(root / "data/cifar10-jpeg", "test", n=4 * n, seed=0)
    elif name == "resnet32-akamaster":
        path = sorted((root / "models/cifar10-resnet-akamaster").glob("resnet32-*.th"))[0]
        model = load_checkpoint(path, "resnet32")
        data = cifar10(root / "data/cifar10-jpeg", "test", n=4 * n, seed=0)
    else:
        model = load_model("efficientnet-lite0")
        data = imagenet_folder(root / "data/imagenet-samples", n=2 * n, seed=0)
    model = model.to(device).eval()
    with torch.no_grad():
        pred = torch.cat(
            [
                model(data.images[i : i + 32].to(device)).argmax(1).cpu()
                for i in range(0, len(data), 32)
            ]
        )
    ok = pred == data.labels
    return model, data.images[ok][:n].to(device), data.labels[ok][:n].to(device)


def plan(name: str, full: bool) -> list[tuple[int, float, int]]:
    """(steps, t, images) rows of a model."""
    ts = (0.0, 0.2, 0.5)
    if full:
        n = 50 if name == "efficientnet-lite0" else 100
        return [(s, t, n) for s in (20, 50, 100, 1000) for t in ts]
    if name == "efficientnet-lite0":
        return [(20, t, 50) for t in (0.0, 0.2)]
    return (
        [(20, t, 100) for t in ts]
        + [(50, 0.0, 100)]
        + [(100, t, 100) for t in (0.0, 0.2)]
        + [(1000, 0.0, 8)]
    )


def warm_up(model: nn.Module, x: torch.Tensor, y: torch.Tensor, advlib: Any) -> None:
    """Two steps of every attack on a few images, so that no timed call pays first-call
    costs (allocator, kernels)."""
    cell(model, x[:4], y[:4], 2, 0.0, advlib)


def cell(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, t: float, advlib: Any
) -> dict[str, dict[str, float]]:
    """The four attacks on one batch at one budget and threshold."""
    mask = fcr_region(model, x, y, t=t)
    masked = Masked(model, x, mask)
    calls = {
        OURS: lambda: RegionDDN(model, t=t, steps=steps).run(x, y, mask=mask).x_adv.to(x),
        FMN: lambda: advlib.fmn(masked, x, y, norm=2, steps=steps),
        ATTACKS[2]: lambda: advlib.ddn(masked, x, y, steps=steps, levels=None),
        ATTACKS[3]: lambda: advlib.alma(masked, x, y, distance="l2", num_steps=steps),
    }
    out, success, l2 = {}, {}, {}
    for name, call in calls.items():
        t0 = time.perf_counter()
        x_adv = call().detach()
        seconds = time.perf_counter() - t0
        x_adv = x + mask * (x_adv - x)  # the same projection for every attack
        with torch.no_grad():
            success[name] = (model(x_adv).argmax(1) != y).cpu()
        l2[name] = (x_adv - x).flatten(1).norm(dim=1).cpu()
        ok = success[name]
        out[name] = {
            "asr": float(ok.float().mean()),
            "seconds": seconds,
            "mean_l2": float(l2[name][ok].mean()) if ok.any() else float("nan"),
            "median_l2": float(l2[name][ok].median()) if ok.any() else float("nan"),
        }
    both = torch.stack(list(success.values())).all(0)
    for name in calls:
        out[name]["paired_l2"] = float(l2[name][both].mean()) if both.any() else float("nan")
        out[name]["n_paired"] = int(both.sum())
    return out


def timing(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    repeats: int,
    advlib: Any,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], list[float]]:
    """Times (ours, FMN) at t = 0.2 of ``repeats`` calls each, alternating ours, FMN, ours,
    FMN, ... so that a change of the machine's speed hits both alike; ``clock``: wall time, or
    the process's CPU time (``time.process_time``)."""
    mask = fcr_region(model, x, y, t=0.2)
    masked = Masked(model, x, mask)
    calls = (
        lambda: RegionDDN(model, t=0.2, steps=steps).run(x, y, mask=mask),
        lambda: advlib.fmn(masked, x, y, norm=2, steps=steps),
    )
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, out in zip(calls, times, strict=True):
            t0 = clock()
            call()
            out.append(clock() - t0)
    return times


def ratios(rows: list[dict[str, Any]]) -> list[str]:
    """The comparison per (model, steps, t), as a Markdown table: ours' ASR, ours' paired mean
    L2 over the best of adv-lib's three, time over FMN's, and (at t = 0.2) the region cost
    against t = 0."""
    by = {(r["model"], r["steps"], r["t"], r["attack"]): r for r in rows}
    lines = [
        "| model | steps | t | ours ASR | ours / best adv-lib paired mean L2 (best) "
        "| time ours / FMN | ours L2 t=0.2 / t=0 |",
        "|---|---|---|---|---|---|---|",
    ]
    for (model, steps, t, attack), r in by.items():
        if attack != OURS:
            continue
        others = [by[model, steps, t, a] for a in ATTACKS[1:]]
        best = min(others, key=lambda o: o["paired_l2"])
        base = by.get((model, steps, 0.0, OURS))
        cost = f"{r['mean_l2'] / base['mean_l2']:.2f}" if t == 0.2 and base else ""
        lines.append(
            f"| {model} | {steps} | {t} | {100 * r['asr']:.1f} % | "
            f"{r['paired_l2'] / best['paired_l2']:.3f} ({best['attack']}) | "
            f"{r['seconds'] / by[model, steps, t, FMN]['seconds']:.2f} | {cost} |"
        )
    ours = sum(r["seconds"] for r in rows if r["attack"] == OURS)
    fmn = sum(r["seconds"] for r in rows if r["attack"] == FMN)
    lines.append(f"\nTotal time, ours / adv-lib FMN over every row: {ours / fmn:.2f}")
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--models",
        nargs="+",
        default=["resnet20-default", "resnet32-akamaster", "efficientnet-lite0"],
    )
    p.add_argument("--plan", choices=["cpu", "full"], default="cpu")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, help="also write every number as JSON")
    p.add_argument(
        "--timing",
        type=int,
        metavar="REPEATS",
        help="only time ours against FMN: REPEATS alternating calls each at t = 0.2, 20 and "
        "100 steps on 32 images (Lite0: 20 steps, 8 images); the median of each",
    )
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="what --timing measures: wall time, or the process's CPU time (steadier on a "
        "shared machine; with --threads 1 the same work)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(standins()))
    import adv_lib.attacks as advlib

    print(
        "adv-lib imported with stand-in torchvision and visdom modules (not used by the "
        "attacks run here)"
    )
    device = torch.device(args.device)
    if args.timing:
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        print(
            "| model | steps | n | ours (s) | adv-lib FMN (s) | ours / FMN (medians) "
            "| per-pair ratio: median [min, max] |"
        )
        print("|---|---|---|---|---|---|---|")
        for name in args.models:
            n = 8 if name == "efficientnet-lite0" else 32
            model, x, y = load(name, n, device)
            warm_up(model, x, y, advlib)
            for steps in (20,) if name == "efficientnet-lite0" else (20, 100):
                ours, fmn = timing(model, x, y, steps, args.timing, advlib, clock)
                pairs = [a / b for a, b in zip(ours, fmn, strict=True)]
                mo, mf = statistics.median(ours), statistics.median(fmn)
                print(
                    f"| {name} | {steps} | {len(x)} | {mo:.2f} | {mf:.2f} | {mo / mf:.2f} | "
                    f"{statistics.median(pairs):.2f} [{min(pairs):.2f}, {max(pairs):.2f}] |",
                    flush=True,
                )
        return 0
    rows: list[dict[str, Any]] = []
    print(
        "| model | steps | t | n | attack | ASR | mean L2 | median L2 | paired mean L2 "
        "(n) | time (s) | time / FMN |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        cells = plan(name, args.plan == "full")
        model, x_all, y_all = load(name, max(n for *_, n in cells), device)
        warm_up(model, x_all, y_all, advlib)
        for steps, t, n in cells:
            res = cell(model, x_all[:n], y_all[:n], steps, t, advlib)
            fmn_time = res[FMN]["seconds"]
            for attack, r in res.items():
                n_used = min(n, len(x_all))
                rows.append(
                    {"model": name, "steps": steps, "t": t, "n": n_used, "attack": attack, **r}
                )
                print(
                    f"| {name} | {steps} | {t} | {n_used} | {attack} | "
                    f"{100 * r['asr']:.1f} % | {r['mean_l2']:.4f} | {r['median_l2']:.4f} | "
                    f"{r['paired_l2']:.4f} ({r['n_paired']}) | {r['seconds']:.1f} | "
                    f"{r['seconds'] / fmn_time:.2f} |",
                    flush=True,
                )
    print()
    print("\n".join(ratios(rows)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
