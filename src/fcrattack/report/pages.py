"""The HTML page of attack results (``fcrattack demo``, ``fcrattack attack --page``): a summary
table, then one row per image with the clean image, its Grad-CAM heat-map and FCR mask, and
per attack run the amplified perturbation and the adversarial image with their predictions.
Images are written as PNG files next to the page and linked by relative path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..attacks import AttackResult
from ..viz.document import Block, Picture, Table, to_html
from ..viz.images import (
    cam_overlay,
    display_factor,
    mask_image,
    perturbation_image,
    png_names,
    save_png,
)
from .tables import summary_table


def _name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)


def _verdict(res: AttackResult, i: int) -> str:
    if not res.clean_correct[i] and res.target is None:
        return "misclassified before (not counted)"
    if res.success[i]:
        return "success" + ("" if res.success_uint8[i] else "; lost after uint8")
    return "failed"


def image_table(
    out: Path,
    x: torch.Tensor,
    y: torch.Tensor,
    ids: Sequence[str],
    classes: Sequence[str],
    cams: torch.Tensor,
    results: Mapping[str, AttackResult],
) -> Table:
    """Write the images of every row under ``out/img`` and return the table.

    x (N, 3, H, W) clean images, y (N,) labels, cams (N, H, W) normalised Grad-CAM maps;
    ``results`` maps run names to results on the same images. The mask column shows the first
    result's mask (the whole image if it has none).
    """
    scale = display_factor(x.shape[-1])
    first = next(iter(results.values()))
    mask = first.mask if first.mask is not None else torch.ones_like(x[:, :1])
    headers = ["image", "clean", "Grad-CAM", "FCR mask"]
    for name in results:
        headers += [f"perturbation, {name} (amplified)", f"adversarial, {name}"]
    folders = [name.with_suffix("") for name in png_names(ids)]  # one folder per image

    def put(i: int, kind: str, img: torch.Tensor, caption: list[str] | None = None) -> Picture:
        rel = f"img/{folders[i].as_posix()}/{kind}.png"
        save_png(img, out / rel, scale)
        return Picture(rel, caption or [], pixelated=scale > 1)

    rows = []
    for i, image_id in enumerate(ids):
        row: list[str | Picture] = [
            image_id,
            put(
                i,
                "clean",
                x[i],
                [
                    f"true: {_name(classes, int(y[i]))}",
                    f"pred: {_name(classes, int(first.pred_clean[i]))}",
                ],
            ),
            put(i, "cam", cam_overlay(x[i], cams[i])),
            put(
                i,
                "mask",
                mask_image(mask[i]),
                [f"{100 * float(mask[i].mean()):.0f} % of the image"],
            ),
        ]
        for k, res in enumerate(results.values()):
            row += [
                put(
                    i,
                    f"delta{k}",
                    perturbation_image(res.x_adv[i] - x[i].cpu()),
                    [
                        f"L2 {float(res.norms['l2'][i]):.3f}",
                        f"Linf {float(res.norms['linf'][i]):.4f}",
                    ],
                ),
                put(
                    i,
                    f"adv{k}",
                    res.x_adv[i],
                    [f"pred: {_name(classes, int(res.pred_adv[i]))}", _verdict(res, i)],
                ),
            ]
        rows.append(row)
    return Table(headers, rows)


def write_page(
    path: str | Path,
    title: str,
    intro: str,
    summaries: Mapping[str, Mapping[str, float]],
    images: Table,
) -> Path:
    """Write the page: title, intro, summary table, then the image table from
    ``image_table`` (whose images already lie beside ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [
        Block("h1", title),
        Block("p", intro),
        Block("h2", "Summary"),
        Block("table", table=summary_table(summaries)),
        Block("h2", "Images"),
        Block("table", table=images),
    ]
    path.write_text(to_html(blocks, title), encoding="utf-8")
    return path
