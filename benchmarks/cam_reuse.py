#!/usr/bin/env python
"""What ``fcrattack attack`` saves per batch by writing the Grad-CAM map the attack made
(``AttackResult.cam``) instead of computing it again after the attack: one batch's Grad-CAM
(``fcrattack.cam.gradcam`` of the true class, a forward and a backward pass to the CAM layer,
as the data-set writer ran it) against the same batch's region DDN attack (``RegionDDN.run``
with ``quantize=True``, as the command line builds it; its own Grad-CAM included), measured
alternately in one process; medians.

    python benchmarks/cam_reuse.py --repeats 3 --threads 1 --clock cpu

Rows: the default CIFAR-10 ResNet-20 on 128 JPEG test images at 100 steps (the command line's
default budget), EfficientNet-Lite0 on 16 ImageNet photos (224 px) at 50 steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from fcrattack import RegionDDN
from fcrattack.cam import gradcam
from fcrattack.data import Dataset, cifar10, imagenet_folder, shared_root
from fcrattack.models import default_model, load_model

#: (model, images, steps) per row
ROWS = (("resnet20-default", 128, 100), ("efficientnet-lite0", 16, 50))


def load(name: str, n: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model and n images with their labels (seeded subset, seed 0)."""
    root = shared_root()
    data: Dataset
    if name == "resnet20-default":
        model = default_model()
        data = cifar10(root / "data/cifar10-jpeg", "test", n=n, seed=0)
    else:
        model = load_model("efficientnet-lite0")
        data = imagenet_folder(root / "data/imagenet-samples", n=n, seed=0)
    return model.eval(), data.images, data.labels


def measure(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    repeats: int,
    clock: Callable[[], float],
) -> tuple[list[float], list[float]]:
    """Times (attack, Grad-CAM) of ``repeats`` calls each, alternating."""
    calls = (
        lambda: RegionDDN(model, steps=steps, quantize=True).run(x, y),
        lambda: gradcam(model, x, y),
    )
    calls[1]()  # first-call costs (allocator, layer lookup) untimed
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, out in zip(calls, times, strict=True):
            t0 = clock()
            call()
            out.append(clock() - t0)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or the process's CPU time (steadier on a shared machine)",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(
        "| model | images | steps | attack (s) | Grad-CAM (s) | Grad-CAM / attack "
        "| saved per batch |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, n, steps in ROWS:
        model, x, y = load(name, n)
        attack, cam = (
            statistics.median(t) for t in measure(model, x, y, steps, args.repeats, clock)
        )
        print(
            f"| {name} | {len(x)} | {steps} | {attack:.2f} | {cam:.3f} | {cam / attack:.4f} | "
            f"{100 * cam / (attack + cam):.2f} % |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
