"""Whether a serialised pytree spec of a ``.pt2`` program is safe to load (``spec_problem``).

A program's ``in_spec`` and ``out_spec`` (JSON whose ``context`` values may be JSON again)
describe how its inputs and outputs nest. Torch reads them while the file loads, before the
program itself is checked: unflatten writes their dict keys and keyword names into code as
argument names, and decoding a context imports modules it names (a ``collections.defaultdict``
imports its ``default_factory_module``; a ``{"__enum__": ...}`` context imports its ``fqn``).
So a spec may nest only tuples, lists, dicts and ordered dicts (``SPEC_TYPES``), hold no
context key that imports (``IMPORTING_KEYS``), and every string in it must be a plain name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

#: the containers a spec may nest (a leaf's type is null)
SPEC_TYPES = frozenset(
    {"builtins.tuple", "builtins.list", "builtins.dict", "collections.OrderedDict"}
)
#: context keys whose values torch imports as modules
IMPORTING_KEYS = frozenset({"__enum__", "default_factory_module", "default_factory_name"})
#: JSON decoded inside JSON at most this deep
MAX_DEPTH = 8


def _decoded(text: str, depth: int) -> Any:
    """``text`` decoded as JSON while ``depth`` allows, else ``text`` itself."""
    try:
        return json.loads(text) if depth < MAX_DEPTH else text
    except (ValueError, RecursionError):
        return text


def _parts(value: Any, depth: int = 0) -> Iterator[str | dict]:
    """Every string (dict keys too) and every dict of a spec, JSON strings decoded for as long
    as they are JSON (numbers and null are no strings)."""
    if isinstance(value, str):
        decoded = _decoded(value, depth)
        if decoded == value:
            yield value
        else:
            yield from _parts(decoded, depth + 1)
    elif isinstance(value, dict):
        yield value
        for key, item in value.items():
            yield from _parts(str(key), depth)
            yield from _parts(item, depth)
    elif isinstance(value, list):
        for item in value:
            yield from _parts(item, depth)


def spec_problem(text: str, plain: re.Pattern[str]) -> str | None:
    """Why the serialised spec ``text`` is refused (module docstring), or None.

    Args:
        text: the spec as the program's JSON holds it (a JSON string).
        plain: the pattern every string of it must match in full (a plain name).
    """
    try:
        parts = list(_parts(text))
    except RecursionError:
        return "a spec nested too deeply"
    for part in parts:
        if isinstance(part, str):
            if not plain.fullmatch(part):
                return f"{part[:60]!r}, which is not a plain name"
        elif IMPORTING_KEYS & part.keys():
            return "a context that makes torch import a module"
        elif "children_spec" in part and part.get("type") not in {None, *SPEC_TYPES}:
            return f"a {str(part.get('type'))[:60]!r} node (only tuples, lists and dicts)"
    return None
