"""PNG figures of the report (matplotlib, Agg backend): line plots of the sweeps, side-by-side
panels with reference lines (the region trade-off), bars of the FCR-importance experiment and
the image panels of Figs. 1/3."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from ..base.store import replace_file
from .images import cam_overlay, mask_image, perturbation_image

Series = tuple[str, list[float], list[float]]


def _save(fig: plt.Figure, path: Path) -> Path:
    """Lay out, write as PNG (110 dpi) and close ``fig``."""
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return replace_file(path, buffer.getvalue())


def line_plot(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    series: list[Series],
    paper: list[Series] | None = None,
    log_x: bool = False,
) -> Path:
    """Lines (label, xs, ys) and optional paper points (drawn as large markers)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, xs, ys in series:
        ax.plot(xs, ys, marker="o", label=label)
    for label, xs, ys in paper or []:
        ax.scatter(xs, ys, marker="*", s=150, zorder=5, label=f"paper: {label}")
    if log_x:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


#: one panel: (y label, lines, horizontal reference lines (label, y))
Panel = tuple[str, list[Series], list[tuple[str, float]]]


def panels_plot(path: Path, title: str, xlabel: str, panels: list[Panel]) -> Path:
    """Side-by-side panels sharing the x axis, each with lines and dashed reference lines."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.5), squeeze=False)
    for ax, (ylabel, series, refs) in zip(axes[0], panels):
        for k, (label, xs, ys) in enumerate(series):
            ax.plot(xs, ys, marker="o", color=f"C{k}", label=label)
        for k, (label, y) in enumerate(refs):
            ax.axhline(y, color=f"C{k}", ls="--", lw=1, label=label)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def bar_plot(
    path: Path,
    title: str,
    groups: list[str],
    bars: dict[str, list[float]],
    ylabel: str,
    hline: float | None = None,
) -> Path:
    """Grouped bars: one group per entry of ``groups``, one bar per key of ``bars``."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(groups)), 3.5))
    width = 0.8 / max(len(bars), 1)
    for k, (label, values) in enumerate(bars.items()):
        ax.bar([i + k * width for i in range(len(groups))], values, width, label=label)
    if hline is not None:
        ax.axhline(hline, color="k", ls="--", lw=1, label=f"paper: >= {hline:g}")
    labels = [textwrap.fill(g, 20) for g in groups]  # long model names on several lines
    ax.set_xticks([i + width * (len(bars) - 1) / 2 for i in range(len(groups))], labels, fontsize=7)
    ax.set(title=title, ylabel=ylabel, ylim=(0, 105))
    ax.legend(fontsize=7)
    return _save(fig, path)


def panel(path: Path, artifact: dict, title: str) -> Path:
    """Figs. 1/3: per image (rows) the clean image, Grad-CAM heat-map, FCR mask, and per attack
    the amplified perturbation and the adversarial example."""
    x, cam, mask, adv = artifact["x"], artifact["cam"], artifact["mask"], artifact["adv"]
    cols = ["image", "Grad-CAM", "FCR mask"]
    for name in adv:
        cols += [f"{name} perturbation", f"{name} adversarial"]
    n = len(x)
    fig, axes = plt.subplots(n, len(cols), figsize=(1.6 * len(cols), 1.7 * n + 0.4), squeeze=False)
    for i in range(n):
        imgs = [x[i], cam_overlay(x[i], cam[i]), mask_image(mask[i])]
        for xa in adv.values():
            imgs += [perturbation_image(xa[i] - x[i]), xa[i]]
        for j, img in enumerate(imgs):
            ax = axes[i][j]
            ax.imshow(
                torch.as_tensor(img).clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest"
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(textwrap.fill(cols[j], 14), fontsize=8)
    fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def forest_plot(
    path: Path,
    title: str,
    rows: list[tuple[str, float, float, float, bool]],
    band: float | None = None,
) -> Path:
    """Ratios with intervals on a log axis, one row each: (label, ratio, lo, hi, filled); a
    line at 1 and, with ``band``, the shaded equivalence band [1 / band, band]."""
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(rows) + 1.2))
    for k, (_, r, lo, hi, filled) in enumerate(rows):
        y = len(rows) - 1 - k
        ax.plot([lo, hi], [y, y], color="C0", lw=1)
        ax.plot([r], [y], "o", color="C0", mfc="C0" if filled else "white")
    if band:
        ax.axvspan(1 / band, band, color="0.85", zorder=0)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)), [label for label, *_ in reversed(rows)], fontsize=6)
    ax.set(xlabel="L2 control / L2 FCR (log scale)")
    ax.set_title(title, fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)
