"""The one document model of every page fcrattack writes (the reproduction report, the demo
and attack pages): headings, paragraphs, tables whose cells may hold images, and figures,
written as Markdown and as a self-contained HTML page (images linked by relative path);
plus the formatting of numbers in cells."""

from __future__ import annotations

import html
import math
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..base.stats import wilson_interval


@dataclass
class Picture:
    """An image in a table cell: relative path and caption lines; ``pixelated`` when its file
    is enlarged by nearest neighbour (a small image: shown as crisp pixels at any size)."""

    src: str
    caption: list[str] = field(default_factory=list)
    pixelated: bool = False


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
        picture = f"![{cell.src}]({urllib.parse.quote(cell.src)})"
        return "<br>".join([picture, *cell.caption]).replace("|", "\\|")
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
            out.append(f"![{b.text}]({urllib.parse.quote(b.src)})\n\n*{b.text}*")
    return "\n\n".join(out) + "\n"


ID_PX, PICTURE_PX = 130, 116  # image grids: width of the first column, least of a picture's
STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;"
    "line-height:1.4;color:#222;background:#fff}"
    # a table wider than the page scrolls in its own box, a shadow at the edge it hides
    ".scroll{overflow-x:auto;background:linear-gradient(to right,#fff 30%,#fff0),"
    "linear-gradient(to left,#fff 30%,#fff0) 100% 0,"
    "radial-gradient(farthest-side at 0 50%,#0003,#0000),"
    "radial-gradient(farthest-side at 100% 50%,#0003,#0000) 100% 0;"
    "background-repeat:no-repeat;background-size:40px 100%,40px 100%,14px 100%,14px 100%;"
    "background-attachment:local,local,scroll,scroll}"
    "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
    "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}.num{text-align:right}"
    # image grids: equal columns filling the page, images as wide as their column
    f"table.pics{{table-layout:fixed;width:100%}}table.pics th:first-child{{width:{ID_PX}px}}"
    "table.pics th{font-size:85%}table.pics td:first-child,table.pics th{overflow-wrap:anywhere}"
    ".pic{text-align:center}td.pic img{display:block;width:100%;height:auto}"
    "td.pic img.px{image-rendering:pixelated}.cap{font-size:85%}"
    ".note{color:#555;font-size:90%}figure{margin:1em 0}figure img{max-width:100%;height:auto}"
)
NUMBER = re.compile(r"[-+]?\.?\d")  # how a number cell starts: '3/4', '-1.02', '87.50 % ...'


def _column_kinds(t: Table) -> list[str]:
    """Per column, the class of its cells: 'pic' when it holds pictures (centred), 'num' when
    every text cell is a number or '-' (right-aligned), else '' (text, left-aligned)."""
    kinds = []
    for j in range(len(t.headers)):
        cells = [r[j] for r in t.rows]
        texts = [c for c in cells if isinstance(c, str) and c != "-"]
        if any(isinstance(c, Picture) for c in cells):
            kinds.append("pic")
        elif texts and all(NUMBER.match(c) for c in texts):
            kinds.append("num")
        else:
            kinds.append("")
    return kinds


def _html_text(text: str, names: bool = False) -> str:
    """Escaped text of a cell, header or caption; a unit keeps to its number ('87.50 %' never
    breaks before '%'), and ``names`` (the image ids of an image grid) may break after '/' and
    '_'."""
    out = html.escape(text).replace(" %", "\u00a0%")
    return re.sub("([/_])", r"\1<wbr>", out) if names else out


def _url(path: str) -> str:
    """A relative file path as a link target: URL-quoted (a ``#`` or ``?`` in a file name
    would end the path), then escaped for an HTML attribute."""
    return html.escape(urllib.parse.quote(path))


def _class(kind: str) -> str:
    return f" class='{kind}'" if kind else ""


def _html_cell(cell: Cell, kind: str, names: bool) -> str:
    if isinstance(cell, Picture):
        caption = "".join(f"<div class='cap'>{_html_text(line)}</div>" for line in cell.caption)
        return (
            f"<td class='pic'><img src='{_url(cell.src)}'"
            f"{_class('px' if cell.pixelated else '')} alt='{html.escape(cell.src)}'>{caption}</td>"
        )
    return f"<td{_class(kind)}>{_html_text(cell, names)}</td>"


def _html_table(t: Table) -> str:
    kinds = _column_kinds(t)
    pictures = kinds.count("pic")
    head = "".join(f"<th{_class(k)}>{_html_text(h)}</th>" for h, k in zip(t.headers, kinds))
    rows = "".join(
        "<tr>" + "".join(_html_cell(c, k, pictures > 0) for c, k in zip(r, kinds)) + "</tr>"
        for r in t.rows
    )
    grid = f" class='pics' style='min-width:{ID_PX + PICTURE_PX * pictures}px'"
    notes = "".join(f"\n<p class='note'>{html.escape(n)}</p>" for n in t.notes)
    return (
        f"<div class='scroll'><table{grid if pictures else ''}><tr>{head}</tr>{rows}</table></div>"
        f"{notes}"
    )


def _anchors(blocks: list[Block]) -> dict[int, str]:
    """A distinct id for every h2 block (by index), from its text."""
    ids: dict[int, str] = {}
    for i, b in enumerate(blocks):
        if b.kind == "h2":
            slug = re.sub(r"[^a-z0-9]+", "-", b.text.lower()).strip("-") or "section"
            ids[i] = slug if slug not in ids.values() else f"{slug}-{i}"
    return ids


def _contents(blocks: list[Block], ids: dict[int, str]) -> str:
    items = "".join(f"<li><a href='#{ids[i]}'>{html.escape(blocks[i].text)}</a></li>" for i in ids)
    return f"<nav class='note'><strong>Contents</strong><ul>{items}</ul></nav>"


def to_html(blocks: list[Block], title: str) -> str:
    """The document as one HTML page; with more than two sections, its title is followed by
    their contents, linked to the sections' headings."""
    out = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
    ]
    ids = _anchors(blocks)
    for i, b in enumerate(blocks):
        if b.kind in ("h1", "h2", "h3"):
            anchor = f" id='{ids[i]}'" if i in ids else ""
            out.append(f"<{b.kind}{anchor}>{html.escape(b.text)}</{b.kind}>")
            if b.kind == "h1" and len(ids) > 2:
                out.append(_contents(blocks, ids))
        elif b.kind == "p":
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table" and b.table is not None:
            out.append(_html_table(b.table))
        elif b.kind == "img":
            src = _url(b.src)
            out.append(
                f"<figure><a href='{src}'><img src='{src}' alt='{html.escape(b.text)}'></a>"
                f"<figcaption class='note'>{html.escape(b.text)}</figcaption></figure>"
            )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
