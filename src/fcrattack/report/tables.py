"""The summary table of attack runs (from ``AttackResult.summary()``), one formatter for the
terminal, the pages and ``summary.json`` readers alike."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..metrics import CONVENTIONS
from ..viz.document import Block, Table, fmt, fmt_interval, rate, to_markdown

HEADERS = [
    "run",
    "clean correct",
    "ASR",
    "ASR after uint8",
    "L2",
    "L2 (255)",
    "Linf",
    "Linf (255)",
    "L0 values",
    "L0 px",
    "PSNR",
    "PSNR_255",
    "mask area",
]


def summary_row(name: str, s: Mapping[str, float]) -> list[str]:
    """One formatted row of ``HEADERS`` from ``AttackResult.summary()``."""
    n = int(s["n"])
    n_ok, n_q = int(s["n_success"]), int(s["n_success_uint8"])
    mask = f"{100 * s['mask_fraction']:.1f} %" if "mask_fraction" in s else "-"
    return [
        name,
        f"{n}/{int(s['n_images'])}",
        rate(n_ok, n) if n else "-",
        rate(n_q, n) if n else "-",
        fmt_interval(s["l2"], (s.get("l2_lo", math.nan), s.get("l2_hi", math.nan)), 3),
        fmt(s["l2_255"], 2),
        fmt(s["linf"], 4),
        fmt(s["linf_255"], 2),
        fmt(s["l0"], 1),
        fmt(s["l0_pixels"], 1),
        fmt(s["psnr"], 2),
        fmt(s["psnr_255"], 2),
        mask,
    ]


def summary_table(summaries: Mapping[str, Mapping[str, float]]) -> Table:
    """Run name -> ``AttackResult.summary()`` as a table with the metric conventions below."""
    return Table(HEADERS, [summary_row(k, s) for k, s in summaries.items()], [CONVENTIONS])


def summary_markdown(summaries: Mapping[str, Mapping[str, float]]) -> str:
    """``summary_table`` as Markdown (what the command line prints)."""
    return to_markdown([Block("table", table=summary_table(summaries))])
