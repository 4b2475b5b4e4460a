"""The HTML page of attack results (``fcrattack demo``, ``fcrattack attack --page``, and the
Grad-CAM page of ``fcrattack cam``): a summary table, then one row per image with the clean
image, its Grad-CAM heat-map and FCR mask where the attack used them, and per attack run the
amplified perturbation and the adversarial image with their predictions.
Images are written as PNG files next to the page, one folder per row (``img/0000/clean.png``,
whatever the image's name), and linked by relative path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ..attacks import AttackResult
from ..base.store import replace_file
from ..viz.document import Block, Picture, Table, to_html
from ..viz.images import cam_overlay, display_factor, mask_image, perturbation_image, save_png
from .tables import summary_table


def _name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)


def _verdict(res: AttackResult, i: int) -> str:
    if not res.clean_correct[i] and res.target is None:
        return "misclassified before (not counted)"
    if res.success[i]:
        return (
            "success"
            if res.success_uint8[i]
            else "success in float only: saved PNG not adversarial"
        )
    return "failed"


def _picture(row: int, kind: str) -> str:
    """The path of one picture of the image table, relative to the page."""
    return f"img/{row:04d}/{kind}.png"


def picture_paths(rows: int, runs: int) -> list[str]:
    """Every file ``image_table`` may write for ``rows`` images and ``runs`` attack runs,
    relative to the page's folder (what an output folder's manifest lists)."""
    kinds = ["clean", "cam", "mask", *(f"{k}{r}" for r in range(runs) for k in ("delta", "adv"))]
    return [_picture(i, kind) for i in range(rows) for kind in kinds]


def image_table(
    out: Path,
    x: torch.Tensor,
    y: torch.Tensor,
    ids: Sequence[str],
    classes: Sequence[str],
    results: Mapping[str, AttackResult],
    *,
    cams: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    predicted: Sequence[bool] | None = None,
    pred_clean: torch.Tensor | None = None,
) -> Table:
    """Write the images of every row under ``out/img`` and return the table.

    Args:
        out: the page's folder.
        x: (N, 3, H, W) clean images in [0, 1]; y (N,) their labels.
        ids: the images' ids (first column).
        classes: class names for the captions (indices beyond them are shown as numbers).
        results: run name -> result on the same images (may be empty: Grad-CAM pages).
        cams: (N, H, W) normalised Grad-CAM maps, shown only where given (region attacks).
        masks: (N, 1, H, W) the FCR masks, shown only where given; default: the first
            result's mask, if it has one.
        predicted: per image, whether its label is the model's clean prediction (captioned
            "label (predicted)") rather than a given label ("true").
        pred_clean: (N,) clean predictions; default: the first result's.
    """
    scale = display_factor(x.shape[-1])
    first = next(iter(results.values()), None)
    if masks is None and first is not None:
        masks = first.mask
    if pred_clean is None:
        if first is None:
            raise ValueError("pred_clean is needed when there are no results")
        pred_clean = first.pred_clean
    headers = ["image", "clean"]
    headers += ["Grad-CAM"] if cams is not None else []
    headers += ["FCR mask"] if masks is not None else []
    for name in results:
        headers += [f"perturbation, {name} (amplified)", f"adversarial, {name}"]

    def put(i: int, kind: str, img: torch.Tensor, caption: list[str] | None = None) -> Picture:
        rel = _picture(i, kind)
        save_png(img, out / rel, scale)
        return Picture(rel, caption or [], pixelated=scale > 1)

    rows = []
    for i, image_id in enumerate(ids):
        label = "label (predicted)" if predicted is not None and predicted[i] else "true"
        row: list[str | Picture] = [
            image_id,
            put(
                i,
                "clean",
                x[i],
                [
                    f"{label}: {_name(classes, int(y[i]))}",
                    f"pred: {_name(classes, int(pred_clean[i]))}",
                ],
            ),
        ]
        if cams is not None:
            row.append(put(i, "cam", cam_overlay(x[i], cams[i])))
        if masks is not None:
            area = f"{100 * float(masks[i].mean()):.0f} % of the image"
            row.append(put(i, "mask", mask_image(masks[i]), [area]))
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
    """Write the page: title, intro, summary table (none when ``summaries`` is empty), then
    the image table from ``image_table`` (whose images already lie beside ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = [Block("h1", title), Block("p", intro)]
    if summaries:
        blocks += [Block("h2", "Summary"), Block("table", table=summary_table(summaries))]
    blocks += [Block("h2", "Images"), Block("table", table=images)]
    return replace_file(path, to_html(blocks, title).encode("utf-8"))
