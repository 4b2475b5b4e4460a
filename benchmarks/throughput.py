"""Attack throughput (FCR, PGD, C&W) against the forward+backward bound, in one run.

The bound of an attack is the same number of input-gradient (forward+backward) passes of the
same model at the same batch size: FCR steps + 1 (Grad-CAM plus one per step), PGD steps, C&W
steps (``abort_early`` off, so every step is taken). Attack and bound are timed side by side,
interleaved, best of ``--repeats``. The ratio is bound time / attack time (1.0 = no overhead;
the forwards an attack adds to judge success are overhead by this measure). Three tables:

1. images/s by batch size (CIFAR ResNet-20, 32 px, ``fcrattack.default_model()``);
2. cost scaling with the number of images at a fixed batch size;
3. cost scaling with image size: 32 px ResNet-20 vs 224 px EfficientNet-Lite0 on real
   ImageNet samples (``fcrattack.data.imagenet_folder``), FCR with its ImageNet preset.

    python benchmarks/throughput.py --n 128 --batch-sizes 32 128 --scale-n 32 64 128
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fcr_throughput import SHARED, attack_time, best_interleaved, bound_time
from fcrattack import CW, FCR, PGD, Execution, default_model, load_model
from fcrattack.data import cifar10, imagenet_folder


def attacks(model, dataset: str, steps: int, cw_steps: int, bs: int, with_cw: bool = True):
    """(name, attack, gradient passes per image) of the benchmarked attacks."""
    out = [
        (
            "FCR",
            FCR.paper(model, dataset, steps=steps, execution=Execution(batch_size=bs)),
            steps + 1,
        ),
        (
            "PGD Linf",
            PGD.paper(model, dataset, steps=steps, execution=Execution(batch_size=bs)),
            steps,
        ),
    ]
    if with_cw:
        out.append(
            (
                "C&W",
                CW(model, steps=cw_steps, abort_early=False, execution=Execution(batch_size=bs)),
                cw_steps,
            )
        )
    return out


def measure(model, atk, passes: int, x, y, bs: int, repeats: int) -> tuple[float, float]:
    """Best seconds of (attack, bound) on x, interleaved."""
    a, b = best_interleaved(
        [lambda: attack_time(atk, x, y), lambda: bound_time(model, x, passes, bs)], repeats
    )
    return a, b


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cifar", default=str(SHARED / "data" / "cifar10-jpeg"))
    p.add_argument("--imagenet", default=str(SHARED / "data" / "imagenet-samples"))
    p.add_argument("--steps", type=int, default=20, help="FCR and PGD steps")
    p.add_argument("--cw-steps", type=int, default=100)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    p.add_argument(
        "--scale-n",
        type=int,
        nargs="+",
        default=[32, 64, 128],
        help="numbers of images for the scaling table (batch = the first of them)",
    )
    p.add_argument("--big-n", type=int, default=8, help="images (= batch) at 224 px")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    dev = torch.device(args.device)
    n = max(args.batch_sizes + args.scale_n)
    model = default_model().to(dev).eval()
    ds = cifar10(args.cifar, "test", n=n, seed=0)
    x_all, y_all = ds.images.to(dev), ds.labels.to(dev)
    print(
        f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"FCR/PGD {args.steps} steps, C&W {args.cw_steps} steps (abort_early off), "
        f"best of {args.repeats}; ratio = bound time / attack time\n"
    )
    for _, atk, _ in attacks(model, "cifar10", 1, 1, 2):  # warm-up
        atk.run(x_all[:2], y_all[:2])

    print("### Throughput by batch size (ResNet-20, 32 px)\n")
    print("| attack | batch | grad passes | attack img/s | bound img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for bs in args.batch_sizes:
        x, y = x_all[:bs], y_all[:bs]
        for name, atk, passes in attacks(model, "cifar10", args.steps, args.cw_steps, bs):
            a, b = measure(model, atk, passes, x, y, bs, args.repeats)
            print(
                f"| {name} | {bs} | {passes} | {bs / a:.1f} | {bs / b:.1f} | {b / a:.3f} |",
                flush=True,
            )

    bs = args.scale_n[0]
    print(f"\n### Cost vs number of images (ResNet-20, 32 px, batch {bs})\n")
    print("| attack | images | attack s | bound s | attack ms/img | ratio |")
    print("|---|---|---|---|---|---|")
    for name, atk, passes in attacks(
        model, "cifar10", args.steps, args.cw_steps, bs, with_cw=False
    ):
        for k in args.scale_n:
            a, b = measure(model, atk, passes, x_all[:k], y_all[:k], bs, args.repeats)
            print(
                f"| {name} | {k} | {a:.2f} | {b:.2f} | {1e3 * a / k:.1f} | {b / a:.3f} |",
                flush=True,
            )

    print(f"\n### Cost vs image size (FCR and PGD, {args.steps} steps)\n")
    print("| model | image | batch | attack | attack ms/img | bound ms/img | ratio |")
    print("|---|---|---|---|---|---|---|")
    try:
        big = load_model("efficientnet-lite0").to(dev).eval()
        big_name, big_data = "EfficientNet-Lite0", "imagenet"
    except ImportError as exc:  # not installed: a CIFAR net fed the real 224 px images
        print(f"(EfficientNet-Lite0 unavailable: {exc}; ResNet-20 at 224 px instead)\n")
        big, big_name, big_data = model, "ResNet-20", "cifar10"
    inet = imagenet_folder(args.imagenet, n=args.big_n, seed=0)
    xb, yb = inet.images.to(dev), inet.labels.to(dev)
    if big_data == "cifar10":
        yb = yb % 10
    k = args.big_n
    for mname, mdl, data, xs, ys in (
        ("ResNet-20", model, "cifar10", x_all[:k], y_all[:k]),
        (big_name, big, big_data, xb, yb),
    ):
        for name, atk, passes in attacks(mdl, data, args.steps, args.cw_steps, k, with_cw=False):
            a, b = measure(mdl, atk, passes, xs, ys, k, args.repeats)
            print(
                f"| {mname} | {xs.shape[-1]} px | {k} | {name} | {1e3 * a / k:.1f} | "
                f"{1e3 * b / k:.1f} | {b / a:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
