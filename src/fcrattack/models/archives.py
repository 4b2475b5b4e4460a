"""Model files that are zip archives: TorchScript (``torchscript:``) and ``torch.export``
``.pt2`` (``export:``), read with one-line errors naming the file and the form expected.

A ``.pt2`` file is read without running code from it. ``torch.export.load`` unpickles parts of
the archive (sample inputs, pickled weights and constants) and retries a failed
``weights_only=True`` load with a full unpickle; it also evaluates the program's symbolic-shape
expressions with sympy (an ``eval``). So the archive is read into memory once and checked
before torch sees it: every ``torch.save`` blob inside must load with ``weights_only=True``,
plain pickles must import nothing, and every symbolic-shape expression must be plain
arithmetic on shape symbols. A file that fails a check is refused; torch's verifier then
admits only operators as graph nodes. TorchScript files run code by design (their
``__setstate__`` methods run at load): ``torchscript:`` is for trusted files only.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import pickletools
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: an entry name that only TorchScript archives hold, and one only ``.pt2`` archives hold
TORCHSCRIPT_ENTRIES = ("constants.pkl", "code/")
EXPORT_ENTRIES = ("archive_format", "models/")
#: pickle opcodes that look up a global (what lets a pickle run code)
IMPORTING_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "EXT1", "EXT2", "EXT4"}
#: a token of a symbolic-shape expression: numbers, a quoted shape symbol, names, operators
_TOKEN = re.compile(
    r"\s+|\d+(?:\.\d*)?(?:e[-+]?\d+)?|'[a-z]+\d+'|[A-Za-z_]\w*|\*\*|//|==|!=|<=|>=|[-+*/%(),<>=~&|]"
)
_SYMBOL = re.compile(r"[a-z]+\d+")
#: names an expression may use besides shape symbols (s0, u1, ...) and torch's sympy
#: functions (``_names``): sympy's, and Symbol's assumptions
SYMPY_NAMES = frozenset(
    {
        "Symbol",
        "Integer",
        "Rational",
        "Float",
        "Max",
        "Min",
        "Eq",
        "Ne",
        "Lt",
        "Le",
        "Gt",
        "Ge",
        "And",
        "Or",
        "Not",
        "Mul",
        "Add",
        "Pow",
        "Mod",
        "Abs",
        "floor",
        "ceiling",
        "oo",
        "zoo",
        "nan",
        "true",
        "false",
        "True",
        "False",
        "positive",
        "integer",
        "real",
        "nonnegative",
        "negative",
        "nonpositive",
        "finite",
        "infinite",
        "commutative",
    }
)


@functools.cache
def _names() -> frozenset[str]:
    """``SYMPY_NAMES`` and the classes of torch's sympy functions (FloorDiv, ...)."""
    functions = importlib.import_module("torch.utils._sympy.functions")  # imports sympy
    own = {n for n, v in vars(functions).items() if not n.startswith("_") and isinstance(v, type)}
    return SYMPY_NAMES | own


def archive_kind(path: str | Path) -> str | None:
    """``"torchscript"`` or ``"export"`` when ``path`` is such a zip archive, else None."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return None
    for kind, marks in (("torchscript", TORCHSCRIPT_ENTRIES), ("export", EXPORT_ENTRIES)):
        if any(mark in name.partition("/")[2] for name in names for mark in marks):
            return kind
    return None


def redirect(path: str | Path, used: str) -> str | None:
    """What to write instead when ``path``, given as form ``used`` (``"torchscript"``,
    ``"export"`` or ``"checkpoint"``), is an archive of another form; None otherwise."""
    kind = archive_kind(path)
    if kind == used or kind is None:
        return None
    if kind == "torchscript":
        return (
            f"{path} is a TorchScript archive: use torchscript:{path} (runs code from the "
            "file: trusted files only)"
        )
    return f"{path} is a torch.export archive: use export:{path}"


def torch_reason(exc: BaseException) -> str:
    """The gist of a torch loading error: its first sentence, never torch's advice to load
    with ``weights_only=False`` or to allowlist globals (which would run code from the file)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
    lines = (found.group(1) if found else text).strip().splitlines()
    sentences = re.split(r"(?<=\.)\s+", lines[0].strip() if lines else "")
    unsafe = re.compile(r"weights_only.{0,20}False|trust|allowlist|safe_globals", re.I)
    kept = [s for s in sentences if s and not unsafe.search(s)]
    return kept[0] if kept else type(exc).__name__


def load_torchscript(path: str) -> nn.Module:
    """``torch.jit.load`` of ``path`` (runs the file's TorchScript: trusted files only)."""
    hint = redirect(path, "torchscript")
    if hint is not None:
        raise ValueError(f"torchscript:{path}: {hint}")
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # RuntimeError, ValueError, ... from the C++ reader
        raise ValueError(
            f"torchscript:{path}: not a loadable TorchScript file (one saved with "
            f"torch.jit.save): {torch_reason(exc)}"
        ) from None


def _pickles(name: str, data: bytes) -> Iterator[str]:
    """Why the archive entry ``data`` could run code when unpickled (nothing: it is safe)."""
    if data[:4] == b"PK\x03\x04" and zipfile.is_zipfile(io.BytesIO(data)):
        try:  # a torch.save blob, as torch.export.load reads it, but never beyond weights
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            yield f"{name} does not load with weights_only=True ({torch_reason(exc)})"
    elif data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        try:  # an import before a later error would still run: refuse at the first one
            for op, _, _ in pickletools.genops(data):
                if op.name in IMPORTING_OPCODES:
                    yield f"{name} is a pickle that imports code"
                    return
        except Exception:  # not a pickle: raw tensor bytes that happen to start so
            return


def _expressions(value: Any) -> Iterator[str]:
    """Every ``expr_str`` (a symbolic-shape expression torch evaluates) in parsed JSON."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "expr_str" and isinstance(item, str):
                yield item
            else:
                yield from _expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _expressions(item)


def _plain_arithmetic(expr: str) -> bool:
    """Whether ``expr`` uses only numbers, shape symbols, known functions and operators."""
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            return False
        token = match.group()
        named = token[0].isalpha() or token[0] == "_"
        if named and token not in _names() and not _SYMBOL.fullmatch(token):
            return False
        pos = match.end()
    return True


def _refusal(data: bytes) -> str | None:
    """Why the ``.pt2`` archive ``data`` would run code when loaded, or None."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            entry = z.read(info)
            for reason in _pickles(info.filename, entry):
                return reason
            if info.filename.endswith(".json"):
                try:
                    parsed = json.loads(entry)
                except ValueError:
                    continue  # torch itself refuses it
                bad = [e for e in _expressions(parsed) if not _plain_arithmetic(e)]
                if bad:
                    return f"{info.filename} has a symbolic expression that is not arithmetic"
    return None


def load_export(path: str) -> nn.Module:
    """The module of the ``torch.export`` ``.pt2`` file ``path``, unflattened (its module
    tree kept for Grad-CAM), refused when loading it would run code from it."""
    data = Path(path).read_bytes()
    expected = "a .pt2 file saved with torch.export.save"
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError(f"export:{path}: not a zip archive ({expected})")
    hint = redirect(path, "export")
    if hint is not None:
        raise ValueError(f"export:{path}: {hint}")
    try:
        reason = _refusal(data)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"export:{path}: damaged archive ({expected}): {exc}") from None
    if reason is not None:
        raise ValueError(
            f"export:{path}: refused, loading it could run code from the file: {reason}"
        )
    try:
        return torch.export.unflatten(torch.export.load(io.BytesIO(data)))
    except Exception as exc:  # torch raises many kinds for a file it cannot read
        raise ValueError(
            f"export:{path}: not a loadable torch.export program ({expected}): {torch_reason(exc)}"
        ) from None
