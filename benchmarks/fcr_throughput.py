"""FCR attack throughput against its compute bound, measured side by side in one process.

The bound is (steps + 1) forward+backward passes (input gradient) of the same model at the
same batch size: the Grad-CAM pass plus one per iteration. Prints a Markdown table with
images/s for both and the ratio bound_time / fcr_time (1.0 = no overhead at all).

    python benchmarks/fcr_throughput.py --model default --n 256 --batch-sizes 64 256
"""

from __future__ import annotations

import argparse
import time

import torch

from fcrattack import FCR, Execution, load_model
from fcrattack.data import cifar10, shared_root

SHARED = shared_root()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bound_time(model, x: torch.Tensor, passes: int, batch_size: int | None = None) -> float:
    """Seconds for ``passes`` forward+backward (input-gradient) passes over x, in chunks of
    ``batch_size`` (None: all of x at once)."""
    bs = batch_size or len(x)
    _sync(x.device)
    t0 = time.perf_counter()
    for i in range(0, len(x), bs):
        for _ in range(passes):
            xi = x[i : i + bs].detach().requires_grad_(True)
            loss = model(xi).logsumexp(1).sum()
            torch.autograd.grad(loss, xi)
    _sync(x.device)
    return time.perf_counter() - t0


def attack_time(attack, x: torch.Tensor, y: torch.Tensor) -> float:
    """Seconds for ``attack.run(x, y)`` (the attack chunks x by its own ``batch_size``)."""
    _sync(x.device)
    t0 = time.perf_counter()
    attack.run(x, y)
    _sync(x.device)
    return time.perf_counter() - t0


def fcr_time(
    model,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    dataset: str = "cifar10",
    batch_size: int | None = None,
) -> float:
    return attack_time(
        FCR.paper(model, dataset, steps=steps, execution=Execution(batch_size=batch_size)), x, y
    )


def best_interleaved(timers, repeats: int) -> list[float]:
    """Best (minimum) seconds of each zero-argument timer over ``repeats`` rounds, the timers
    called in turn within each round (side by side, so load changes hit them alike)."""
    best = [float("inf")] * len(timers)
    for _ in range(repeats):
        for k, timer in enumerate(timers):
            best[k] = min(best[k], timer())
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="default | checkpoint path")
    p.add_argument("--data", default=str(SHARED / "data" / "cifar10-jpeg"))
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    model = load_model(args.model).to(device)
    ds = cifar10(args.data, "test", n=args.n, seed=0)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"model {args.model}, {args.n} images, steps {args.steps}\n"
    )
    print("| batch | FCR img/s | bound img/s | ratio (bound/FCR time) |")
    print("|---|---|---|---|")
    for bs in args.batch_sizes:
        x = ds.images[:bs].to(device)
        y = ds.labels[:bs].to(device)
        fcr_time(model, x[:2], y[:2], 1)  # warm-up
        f, b = best_interleaved(
            [
                lambda x=x, y=y: fcr_time(model, x, y, args.steps),
                lambda x=x: bound_time(model, x, args.steps + 1),
            ],
            args.repeats,
        )  # interleaved, best of repeats
        print(f"| {bs} | {bs / f:.1f} | {bs / b:.1f} | {b / f:.3f} |")


if __name__ == "__main__":
    main()
