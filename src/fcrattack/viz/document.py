"""The one document model of every page fcrattack writes (the reproduction report, the demo
and attack pages): headings, paragraphs, tables whose cells may hold images, and figures,
written as Markdown and as a self-contained HTML page (images linked by relative path);
plus the formatting of numbers in cells."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..stats import wilson_interval


@dataclass
class Picture:
    """An image in a table cell: relative path and caption lines."""

    src: str
    caption: list[str] = field(default_factory=list)


Cell = str | Picture


@dataclass
class Table:
    """A table: ``headers`` and ``rows`` of formatted cells (text or pictures), notes below."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Block:
    """One element: kind "h1" | "h2" | "h3" | "p" | "table" | "img" (``text`` = caption)."""

    kind: str
    text: str = ""
    table: Table | None = None
    src: str = ""


def fmt(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals, '-' when missing or not finite."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def fmt_interval(value: float | None, interval: tuple[float, float] | None, digits: int = 2) -> str:
    """'0.256 [0.231, 0.281]': a number and its 95 % interval ('-' when missing); the
    bracket is left out when the interval is missing or not finite."""
    text = fmt(value, digits)
    if text == "-" or interval is None or not all(map(math.isfinite, interval)):
        return text
    return f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def diff(
    ours: float | None, paper: float | None, interval: tuple[float, float] | None = None
) -> str:
    """ours - paper with a sign, '-' when either is missing; given our 95 % ``interval``, a
    paper number inside it is marked '(within 95 % CI)': not a difference."""
    if ours is None or paper is None or not math.isfinite(ours):
        return "-"
    text = f"{ours - paper:+.2f}"
    if interval is not None and interval[0] <= paper <= interval[1]:
        text += " (within 95 % CI)"
    return text


def rate_interval(count: int, n: int) -> tuple[float, float]:
    """The 95 % Wilson interval of count / n, in %."""
    lo, hi = wilson_interval(count, n)
    return 100 * lo, 100 * hi


def rate(count: int, n: int) -> str:
    """'87.50 % (35/40) [73.9, 94.7]': the rate, its count and its 95 % Wilson interval."""
    if not n:
        return "- (0/0)"
    lo, hi = rate_interval(count, n)
    return f"{100 * count / n:.2f} % ({count}/{n}) [{lo:.1f}, {hi:.1f}]"


def _md_cell(cell: Cell) -> str:
    if isinstance(cell, Picture):
        return "<br>".join([f"![{cell.src}]({cell.src})", *cell.caption]).replace("|", "\\|")
    return cell.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """The document as GitHub-flavoured Markdown."""
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "table" and b.table is not None:
            t = b.table
            lines = [
                "| " + " | ".join(_md_cell(h) for h in t.headers) + " |",
                "|" + "|".join("---" for _ in t.headers) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            lines += [f"\n*{n}*" for n in t.notes]
            out.append("\n".join(lines))
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.src})\n\n*{b.text}*")
    return "\n\n".join(out) + "\n"


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "line-height:1.4;color:#222}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;vertical-align:top}"
    "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
    "td.pic{text-align:center}td.pic img{image-rendering:pixelated;display:block;"
    "margin:0 auto}.cap{font-size:80%}"
    ".note{color:#555;font-size:90%}figure img{max-width:100%}"
)


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Picture):
        caption = "".join(f"<div class='cap'>{html.escape(line)}</div>" for line in cell.caption)
        return (
            f"<td class='pic'><img src='{html.escape(cell.src)}' "
            f"alt='{html.escape(cell.src)}'>{caption}</td>"
        )
    return f"<td>{html.escape(cell)}</td>"


def to_html(blocks: list[Block], title: str) -> str:
    """The document as one HTML page."""
    out = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body>"
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table" and b.table is not None:
            t = b.table
            rows = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in t.rows)
            head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
            out.append(f"<div class='scroll'><table><tr>{head}</tr>{rows}</table></div>")
            out += [f"<p class='note'>{html.escape(n)}</p>" for n in t.notes]
        elif b.kind == "img":
            out.append(
                f"<figure><img src='{html.escape(b.src)}' alt='{html.escape(b.text)}'>"
                f"<figcaption class='note'>{html.escape(b.text)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
