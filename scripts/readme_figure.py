"""The README's picture: clean image, Grad-CAM, FCR mask and region-DDN adversarial image
(with its perturbation, amplified) for a few images of a ``fcrattack demo`` folder.

    fcrattack demo --out runs/demo && python scripts/readme_figure.py runs/demo docs/img/demo.png

Rows are the first ``--rows`` correctly classified images that the demo's first run (region
DDN) fooled after rounding to 8 bits; each row is labelled with the true class, and the
adversarial image with the predicted class, its L2 and its PSNR.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

from fcrattack.data import CIFAR10_CLASSES

COLUMNS = (
    ("clean.png", "clean"),
    ("cam.png", "Grad-CAM"),
    ("mask.png", "FCR mask (t = 0.2)"),
    ("adv0.png", "adversarial"),
    ("delta0.png", "perturbation (amplified)"),
)


def main() -> None:
    """Read the demo folder and write the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demo", type=Path, help="a fcrattack demo output folder")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--rows", type=int, default=3, help="images shown (default 3)")
    args = parser.parse_args()
    lines = (args.demo / "results.jsonl").read_text().splitlines()
    first = json.loads(lines[0])["run"]
    records = [r for r in map(json.loads, lines) if r["run"] == first]  # one per page row
    chosen = [
        (row, r) for row, r in enumerate(records) if r["clean_correct"] and r.get("success_uint8")
    ][: args.rows]
    fig, axes = plt.subplots(
        len(chosen), len(COLUMNS), figsize=(2 * len(COLUMNS), 2.25 * len(chosen))
    )
    for number, (row, (position, record)) in enumerate(zip(axes, chosen, strict=True)):
        folder = args.demo / "img" / f"{position:04d}"  # the page's pictures of that row
        for ax, (name, title) in zip(row, COLUMNS, strict=True):
            ax.imshow(Image.open(folder / name))
            ax.set_xticks([])
            ax.set_yticks([])
            if number == 0:
                ax.set_title(title, fontsize=9)
        row[0].set_ylabel(CIFAR10_CLASSES[record["label"]], fontsize=9)
        row[3].set_xlabel(
            f"{CIFAR10_CLASSES[record['pred_adv']]}: L2 {record['l2']:.2f}, "
            f"PSNR {record['psnr']:.0f} dB",
            fontsize=8,
        )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)


if __name__ == "__main__":
    main()
