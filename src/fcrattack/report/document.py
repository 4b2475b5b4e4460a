"""A minimal document model (headings, paragraphs, tables, images) written as Markdown and as
a self-contained HTML page (images linked by relative path)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Table:
    """A table: ``headers`` and ``rows`` of already formatted cells, with notes below."""

    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Block:
    """One element: kind "h1" | "h2" | "h3" | "p" | "table" | "img" (``text`` = caption)."""

    kind: str
    text: str = ""
    table: Table | None = None
    src: str = ""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


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
            lines = ["| " + " | ".join(_md_cell(h) for h in t.headers) + " |",
                     "|" + "|".join("---" for _ in t.headers) + "|"]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            lines += [f"\n*{n}*" for n in t.notes]
            out.append("\n".join(lines))
        elif b.kind == "img":
            out.append(f"![{b.text}]({b.src})\n\n*{b.text}*")
    return "\n\n".join(out) + "\n"


STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;line-height:1.4}"
         "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
         "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
         "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
         ".note{color:#555;font-size:90%}img{max-width:100%}")


def to_html(blocks: list[Block], title: str) -> str:
    """The document as one HTML page."""
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
           f"</title><style>{STYLE}</style></head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{html.escape(b.text)}</p>")
        elif b.kind == "table" and b.table is not None:
            t = b.table
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                           for r in t.rows)
            head = "".join(f"<th>{html.escape(h)}</th>" for h in t.headers)
            out.append(f"<table><tr>{head}</tr>{rows}</table>")
            out += [f"<p class='note'>{html.escape(n)}</p>" for n in t.notes]
        elif b.kind == "img":
            out.append(f"<figure><img src='{html.escape(b.src)}' alt='{html.escape(b.text)}'>"
                       f"<figcaption class='note'>{html.escape(b.text)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)
