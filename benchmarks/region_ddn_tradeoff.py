"""Region-restricted DDN (``region-ddn``) across FCR thresholds t, against C&W and the literal FCR.

On the real CIFAR-10 ResNet-20 (akamaster, ../shared/models) and the first ``--n`` JPEG test
images it classifies correctly, runs on the same images: RegionDDN at each t in ``--ts``
(t = 0: the whole image, i.e. unrestricted DDN), C&W L2 at the FCR paper's settings (c = 1,
lr = 0.01, ``--cw-steps`` = 1000) and the literal FCR Algorithm 1 (``FCR.paper``). Prints a
Markdown table: ASR, mean L2 and mean L0 over successful images ([0, 1] scale; L0 counts changed
values of 3 x 32 x 32), L0 and L2 relative to C&W's, mean mask fraction, wall time.
``--plot PATH`` saves mean L2 and L0 against t (matplotlib).

    python benchmarks/region_ddn_tradeoff.py --n 100 --plot ddn_tradeoff.png
"""

from __future__ import annotations

import argparse
import time

import torch

from fcrattack.attacks import CW, FCR, Attack, RegionDDN
from fcrattack.data import cifar10, shared_root
from fcrattack.models import load_checkpoint

SHARED = shared_root()
TS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)


def measure(attack: Attack, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Summary of one attack on (x, y), with its wall time in seconds."""
    t0 = time.perf_counter()
    summary = attack.run(x, y).summary()
    summary["time_s"] = time.perf_counter() - t0
    return summary


def plot(
    rows: dict[str, dict[str, float]], ts: list[float], cw: dict[str, float], path: str
) -> None:
    """Mean L2 and L0 of RegionDDN against t, with C&W as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("l2", "l0")):
        ax.plot(ts, [rows[f"region DDN t={t}"][key] for t in ts], "o-", label="region DDN")
        ax.axhline(cw[key], color="gray", linestyle="--", label="C&W (paper settings)")
        ax.set_xlabel("FCR threshold t")
        ax.set_ylabel(f"mean {key.upper()} (successful images)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="correctly classified test images")
    p.add_argument("--steps", type=int, default=100, help="RegionDDN steps")
    p.add_argument("--cw-steps", type=int, default=1000)
    p.add_argument("--ts", type=float, nargs="+", default=list(TS))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plot", default=None, help="save a plot of L2 and L0 vs t to this path")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    weights = next((SHARED / "models" / "cifar10-resnet-akamaster").glob("resnet20-*.th"))
    model = load_checkpoint(weights, "resnet20")
    data = cifar10(SHARED / "data" / "cifar10-jpeg", "test", n=max(4 * args.n, 200), seed=0)
    with torch.no_grad():
        ok = model(data.images).argmax(1) == data.labels
    x, y = data.images[ok][: args.n], data.labels[ok][: args.n]

    print(
        f"ResNet-20 (akamaster), {len(x)} correctly classified JPEG CIFAR-10 test images; "
        f"region DDN {args.steps} steps, C&W {args.cw_steps} steps; means over successful "
        f"images, [0, 1] scale, L0 of 3072 values\n"
    )
    print(
        "| attack | ASR % | mean L2 | L2 / C&W | mean L0 | L0 % of C&W | mask fraction | time s |"
    )
    print("|---|---|---|---|---|---|---|---|", flush=True)
    attacks = {
        "C&W (c=1, lr=0.01)": CW.paper(model, steps=args.cw_steps),
        "FCR.paper (literal)": FCR.paper(model),
    }
    attacks.update({f"region DDN t={t}": RegionDDN(model, t=t, steps=args.steps) for t in args.ts})
    rows: dict[str, dict[str, float]] = {}
    for name, attack in attacks.items():  # C&W first: the other rows are relative to it
        s = rows[name] = measure(attack, x, y)
        cw = rows["C&W (c=1, lr=0.01)"]
        mask = f"{s['mask_fraction']:.3f}" if "mask_fraction" in s else "-"
        print(
            f"| {name} | {100 * s['asr']:.1f} | {s['l2']:.4f} | {s['l2'] / cw['l2']:.2f} "
            f"| {s['l0']:.0f} | {100 * s['l0'] / cw['l0']:.1f} | {mask} | {s['time_s']:.0f} |",
            flush=True,
        )
    if args.plot:
        plot(rows, sorted(args.ts), cw, args.plot)


if __name__ == "__main__":
    main()
