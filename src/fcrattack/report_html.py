"""Summary tables (Markdown and HTML) and a small self-contained HTML page of attack results.

The page shows one row per image (clean image, Grad-CAM heat-map, FCR mask, and for each
attack run the amplified perturbation and the adversarial image, with predictions) below a
summary table. Images are written as PNG files next to the page and linked by relative path.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from .attacks import AttackResult
from .viz import cam_overlay, display_factor, mask_image, perturbation_image, save_png

SUMMARY_HEADERS = ["run", "clean correct", "ASR", "ASR after uint8", "L2", "L2 (255)", "Linf",
                   "Linf (255)", "L0 values", "L0 pixels", "PSNR", "PSNR_255", "mask area"]

SUMMARY_NOTE = (
    "ASR counts images the model classified correctly before the attack (n_success / n); "
    "'ASR after uint8' re-checks success after rounding the adversarial images to 8 bits (what "
    "the PNG files hold). Norms are means over the successful images. L2, Linf and PSNR are on "
    "the [0, 1] pixel scale (PSNR with MAX = 1); the (255) columns are the same on the "
    "[0, 255] scale; PSNR_255 applies MAX = 255 to the MSE of [0, 1] images (PSNR + 48.13 dB), "
    "the convention the FCR paper's PSNR figures match. L0 counts changed values (of C*H*W) "
    "and changed pixels.")


def _num(value: float, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def summary_row(name: str, s: Mapping[str, float]) -> list[str]:
    """One formatted row of :data:`SUMMARY_HEADERS` from ``AttackResult.summary()``."""
    n = int(s["n"])
    n_ok, n_q = int(s["n_success"]), int(s["n_success_uint8"])
    asr = "-" if n == 0 else f"{100 * n_ok / n:.2f} % ({n_ok}/{n})"
    asr_q = "-" if n == 0 else f"{100 * n_q / n:.2f} % ({n_q}/{n})"
    mask = f"{100 * s['mask_fraction']:.1f} %" if "mask_fraction" in s else "-"
    return [name, f"{n}/{int(s['n_images'])}", asr, asr_q, _num(s["l2"]), _num(s["l2_255"], 2),
            _num(s["linf"], 4), _num(s["linf_255"], 2), _num(s["l0"], 1), _num(s["l0_pixels"], 1),
            _num(s["psnr"], 2), _num(s["psnr_255"], 2), mask]


def markdown_table(summaries: Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of run name -> ``AttackResult.summary()``, with the conventions note."""
    lines = ["| " + " | ".join(SUMMARY_HEADERS) + " |",
             "|" + "---|" * len(SUMMARY_HEADERS)]
    lines += ["| " + " | ".join(summary_row(k, s)) + " |" for k, s in summaries.items()]
    return "\n".join(lines) + "\n\n" + SUMMARY_NOTE


@dataclass
class Cell:
    """One image of a row: relative path and caption lines."""

    src: str
    caption: list[str] = field(default_factory=list)


@dataclass
class Row:
    """One image's row: a heading and its cells (in column order)."""

    title: str
    cells: list[Cell]


def _stem(image_id: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", str(Path(image_id).with_suffix("")))
    return stem.strip("_") or "image"


def _name(classes: Sequence[str], k: int) -> str:
    return classes[k] if 0 <= k < len(classes) else str(k)


def _save_panel(out: Path, stem: str, kind: str, img: torch.Tensor, *, scale: int) -> str:
    rel = f"img/{stem}_{kind}.png"
    save_png(img, out / rel, scale)
    return rel


def image_rows(out: str | Path, x: torch.Tensor, y: torch.Tensor, ids: Sequence[str],
               classes: Sequence[str], cams: torch.Tensor,
               results: Mapping[str, AttackResult]) -> tuple[list[str], list[Row]]:
    """Write the panel images of every image under ``out/img`` and return (column headers,
    rows) for :func:`write_page`.

    x (N, 3, H, W) clean images, y (N,) labels, cams (N, H, W) normalised Grad-CAM maps;
    ``results`` maps run names to results on the same images. The mask column shows the
    first result's mask (an all-ones mask if none has one).
    """
    out = Path(out)
    scale = display_factor(x.shape[-1])
    first = next(iter(results.values()))
    mask = first.mask if first.mask is not None else torch.ones_like(x[:, :1])
    headers = ["clean", "Grad-CAM (true class)", "FCR mask"]
    for name in results:
        headers += [f"perturbation, {name} (amplified)", f"adversarial, {name}"]
    rows = []
    for i, image_id in enumerate(ids):
        stem = _stem(image_id)
        put = partial(_save_panel, out, stem, scale=scale)
        cells = [Cell(put("clean", x[i]), [f"true: {_name(classes, int(y[i]))}",
                                           f"pred: {_name(classes, int(first.pred_clean[i]))}"]),
                 Cell(put("cam", cam_overlay(x[i], cams[i]))),
                 Cell(put("mask", mask_image(mask[i])), [f"{100 * float(mask[i].mean()):.0f} %"])]
        for k, res in enumerate(results.values()):
            delta = res.x_adv[i] - x[i].cpu()
            if not res.clean_correct[i]:
                verdict = "misclassified before (not counted)"
            elif res.success[i]:
                verdict = "success" + ("" if res.success_uint8[i] else "; lost after uint8")
            else:
                verdict = "failed"
            cells += [Cell(put(f"delta{k}", perturbation_image(delta)),
                           [f"L2 {float(res.norms['l2'][i]):.3f}",
                            f"Linf {float(res.norms['linf'][i]):.4f}"]),
                      Cell(put(f"adv{k}", res.x_adv[i]),
                           [f"pred: {_name(classes, int(res.pred_adv[i]))}",
                            verdict])]
        rows.append(Row(image_id, cells))
    return headers, rows


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 6px; text-align: center; vertical-align: top; }
th { background: #f2f2f2; }
td img { image-rendering: pixelated; display: block; margin: 0 auto; }
.cap { font-size: 0.8em; }
.note { font-size: 0.85em; max-width: 70em; color: #555; }
"""


def _summary_html(summaries: Mapping[str, Mapping[str, float]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in SUMMARY_HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in summary_row(k, s))
                   + "</tr>" for k, s in summaries.items())
    return (f"<table><tr>{head}</tr>{body}</table>"
            f"<p class='note'>{html.escape(SUMMARY_NOTE)}</p>")


def render_page(title: str, intro: str, summaries: Mapping[str, Mapping[str, float]],
                headers: Sequence[str], rows: Sequence[Row]) -> str:
    """The HTML text: title, intro paragraph, summary table, per-image table."""
    head = "<th>image</th>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f"<td><img src='{html.escape(c.src)}' alt='{html.escape(c.src)}'>"
            + "".join(f"<div class='cap'>{html.escape(line)}</div>" for line in c.caption)
            + "</td>" for c in row.cells)
        body.append(f"<tr><td>{html.escape(row.title)}</td>{cells}</tr>")
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
            f"<h2>Summary</h2>{_summary_html(summaries)}"
            f"<h2>Images</h2><table><tr>{head}</tr>{''.join(body)}</table>"
            "</body></html>\n")


def write_page(path: str | Path, title: str, intro: str,
               summaries: Mapping[str, Mapping[str, float]], headers: Sequence[str],
               rows: Sequence[Row]) -> Path:
    """Write :func:`render_page` to ``path`` (its images must already lie beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_page(title, intro, summaries, headers, rows), encoding="utf-8")
    return path
