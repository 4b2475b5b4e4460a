"""A griffe extension for the documentation site (registered in mkdocs.yml): classes configured
by declared options (``fcrattack.options.Configurable``: every attack and ``Execution``) get

- the constructor signature the class really has (``FCR(model, /, *, t=0.2, T=0.03, ...)``,
  not the base class's ``(model, /, **options)``),
- a table of their options (name, type, default, the FCR paper's settings for CIFAR-10 and
  ImageNet where the paper gives them, meaning) appended to the docstring, and
- no ``Option(...)`` class attributes in their member lists (the table replaces them).

griffe reads the source statically; the options are read from the imported classes, the one
place they are declared, so the site cannot drift from ``help()`` and ``fcrattack attacks``.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any

import griffe

from fcrattack.options import Configurable, Option

#: the data sets of the paper's settings, with their column titles
PAPER_COLUMNS = {"cifar10": "paper, CIFAR-10", "imagenet": "paper, ImageNet"}
#: class attributes shown in the table instead of as members
REPLACED = ("PAPER",)


def value_text(value: Any) -> str:
    """A value as Markdown code; a fraction of 255 without a short decimal form written as such
    (``16/255``, but ``0.2``, not ``51/255``)."""
    if isinstance(value, float) and not isinstance(value, bool):
        grey = value * 255
        short = len(f"{value:g}") <= 5
        if not short and 0 < abs(value) < 1 and abs(grey - round(grey)) < 1e-9 and round(grey):
            return f"`{round(grey)}/255`"
        return f"`{value:g}`" if math.isfinite(value) else f"`{value}`"
    if isinstance(value, Configurable):
        return f"`{type(value).__name__}()`"
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_table(cls: type[Configurable]) -> str:
    """The Markdown table of ``cls``'s declared options, with the paper's settings if any."""
    paper: dict[str, dict[str, Any]] = getattr(cls, "PAPER", {}) or {}
    columns = [d for d in PAPER_COLUMNS if d in paper]
    head = ["option", "type", "default", *(PAPER_COLUMNS[d] for d in columns), "meaning"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, opt in cls.options().items():
        cells = [f"`{name}`", opt.kind.describe().replace(" | ", " or "), value_text(opt.shown)]
        cells += [value_text(paper[d][name]) if name in paper[d] else "" for d in columns]
        rows.append("| " + " | ".join(_cell(c) for c in [*cells, opt.doc]) + " |")
    if columns:
        note = (
            f'`{cls.__name__}.paper(model, dataset)` (`build(name, model, preset="paper")`, '
            "`--preset paper`) sets the paper's values; an empty cell keeps the default."
        )
    elif hasattr(cls, "paper"):
        note = "The FCR paper gives no settings for it: `paper()` gives the defaults."
    else:
        note = ""
    return "\n".join(["**Options** (keyword-only; checked at construction):", "", *rows, "", note])


def _live(cls: griffe.Class) -> type[Configurable] | None:
    """The imported class ``cls`` documents, if it is configured by declared options."""
    try:
        live = getattr(importlib.import_module(cls.module.path), cls.name)
    except (ImportError, AttributeError):
        return None
    return live if inspect.isclass(live) and issubclass(live, Configurable) else None


def _parameter(param: inspect.Parameter) -> griffe.Parameter:
    kind = griffe.ParameterKind(param.kind.description)
    default = None if param.default is param.empty else value_text(param.default).strip("`")
    return griffe.Parameter(param.name, kind=kind, default=default)


class OptionsExtension(griffe.Extension):
    """Signature, options table and member list of ``Configurable`` classes (module docstring)."""

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        live = _live(cls)
        if live is None or not live.options():
            return
        for name in [*live.options(), *REPLACED]:
            member = cls.members.get(name)
            if isinstance(member, griffe.Attribute) or (
                member is not None and isinstance(getattr(live, name, None), Option)
            ):
                cls.del_member(name)
        init = griffe.Function(
            "__init__",
            parameters=griffe.Parameters(
                *(_parameter(p) for p in inspect.signature(live).parameters.values())
            ),
            lineno=cls.lineno,
            endlineno=cls.lineno,
        )
        cls.set_member("__init__", init)
        text = cls.docstring.value if cls.docstring else ""
        cls.docstring = griffe.Docstring(
            f"{text}\n\n{options_table(live)}".strip(), parent=cls, lineno=cls.lineno
        )
