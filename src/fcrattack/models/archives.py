"""Model files that are zip archives: TorchScript (``torchscript:``) and ``torch.export``
``.pt2`` (``export:``), read with one-line errors naming the file and the form expected.

A ``.pt2`` file is read without running code from it. ``torch.export.load`` unpickles parts of
the archive in full (sample inputs after a failed ``weights_only=True`` load, weights and
constants marked ``use_pickle``, custom-object constants) and evaluates the program's
symbolic-shape expressions with sympy (an ``eval``). So the archive is read into memory once
and checked before torch sees it, by what torch does with each entry rather than by what its
bytes look like or what they are named: an entry named by a weights or constants config with
``use_pickle`` true must be a ``torch.save`` blob that loads with ``weights_only=True``; one
named only with ``use_pickle`` false is raw tensor bytes; otherwise an entry is read as text
(the format markers, ``extra/``) or, named ``*.json``, must be JSON whose symbolic-shape
expressions are plain arithmetic on shape symbols; every other entry, whatever torch would
do with it, must be a ``torch.save`` blob that loads with ``weights_only=True`` (or be
empty). Constants that torch reads as custom objects, and payload names that leave their
folder, are refused outright. Torch's verifier then admits only operators as graph nodes.
TorchScript files run code by design (their ``__setstate__`` methods run at load):
``torchscript:`` is for trusted files only.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import logging
import lzma
import posixpath
import re
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: an entry name that only TorchScript archives hold, and one only ``.pt2`` archives hold
TORCHSCRIPT_ENTRIES = ("constants.pkl", "code/")
EXPORT_ENTRIES = ("archive_format", "models/")
#: entries of a ``.pt2`` archive (below its root folder) that torch reads as text
TEXT_ENTRIES = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
)
#: folders of compiled programs that torch may load beside the exported one
COMPILED_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia/")
#: the folders of the payload configs (``*_config.json``), whose entries name payload files
PAYLOAD_DIRS = ("data/weights/", "data/constants/")
#: what reading a damaged zip archive raises (bad headers, encryption, unknown or corrupt
#: compression)
UNREADABLE = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)
#: the prefix of constant payloads that are tensors (others are custom objects torch unpickles)
TENSOR_CONSTANT_PREFIX = "tensor_"
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


def _weights_only(name: str, data: bytes) -> str | None:
    """Why ``data`` is not a ``torch.save`` blob that loads with ``weights_only=True``."""
    if not data:
        return None
    if data[:4] != b"PK\x03\x04" or not zipfile.is_zipfile(io.BytesIO(data)):
        return f"{name} is not a torch.save file that loads with weights_only=True"
    try:  # as torch.export.load reads it, but never beyond weights
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        return f"{name} does not load with weights_only=True ({torch_reason(exc)})"
    return None


def _payloads(entries: dict[str, bytes]) -> tuple[set[str], set[str], str | None]:
    """The entries that payload configs name as raw tensor bytes (``use_pickle`` false) and
    as pickled ones (true), and why the configs are refused (a name leaving its folder, a
    custom-object constant)."""
    raw: set[str] = set()
    pickled: set[str] = set()  # a name that one entry calls raw and another pickled is checked
    for name, data in entries.items():
        folder = next((d for d in PAYLOAD_DIRS if name.startswith(d)), None)
        if folder is None or not name.endswith("_config.json"):
            continue
        try:
            config = json.loads(data)["config"]
            items = [(str(m["path_name"]), bool(m.get("use_pickle"))) for m in config.values()]
        except (ValueError, KeyError, TypeError, AttributeError):
            return raw, pickled, f"{name} is not a payload config as torch.export.save writes it"
        for path_name, unpickled in items:
            if posixpath.normpath(path_name) != path_name or "/" in path_name:
                return raw, pickled, f"{name} names a payload outside its folder ({path_name!r})"
            if folder == "data/constants/" and not path_name.startswith(TENSOR_CONSTANT_PREFIX):
                return raw, pickled, f"{name} holds a custom-object constant ({path_name})"
            (pickled if unpickled else raw).add(folder + path_name)
    return raw - pickled, pickled, None


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


def _entry_refusal(name: str, data: bytes, raw: set[str], pickled: set[str]) -> str | None:
    """Why the entry ``name`` (below the archive's root folder) could run code, or None: by
    the role torch gives it (module docstring), whatever its name or bytes look like."""
    if name.startswith(COMPILED_DIRS):
        return f"{name} is compiled code (AOTInductor, ExecuTorch or MTIA), which torch may load"
    if name in pickled:
        return _weights_only(name, data)
    if name in TEXT_ENTRIES or name.startswith("extra/") or name in raw:
        return None
    if name.endswith(".json"):
        try:
            parsed = json.loads(data)
        except ValueError:
            return f"{name} is not JSON"
        bad = [e for e in _expressions(parsed) if not _plain_arithmetic(e)]
        return f"{name} has a symbolic expression that is not arithmetic" if bad else None
    return _weights_only(name, data)


def _refusal(data: bytes) -> str | None:
    """Why the ``.pt2`` archive ``data`` would run code when loaded, or None."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        roots = {n.partition("/")[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            return "its entries are not all below one root folder (as torch.export.save writes)"
        if len(set(names)) != len(names):
            return (
                "it holds two entries of one name (torch and this check could read different ones)"
            )
        # torch reads entries below the archive's one root folder (its name is free)
        entries = {i.filename.partition("/")[2]: z.read(i) for i in infos}
    raw, pickled, reason = _payloads(entries)
    if reason is not None:
        return reason
    for name, entry in entries.items():
        reason = _entry_refusal(name, entry, raw, pickled)
        if reason is not None:
            return reason
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
    except UNREADABLE as exc:
        raise ValueError(f"export:{path}: damaged archive ({expected}): {exc}") from None
    if reason is not None:
        raise ValueError(
            f"export:{path}: refused, loading it could run code from the file: {reason}"
        )
    logger = logging.getLogger("torch.export")  # logs a traceback before its own error
    level = logger.level
    try:
        logger.setLevel(logging.CRITICAL)
        with warnings.catch_warnings():  # torch's own deprecation notices, not the user's
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.export.load(io.BytesIO(data))
            module = torch.export.unflatten(program)
    except Exception as exc:  # torch raises many kinds for a file it cannot read
        raise ValueError(
            f"export:{path}: not a loadable torch.export program ({expected}): {torch_reason(exc)}"
        ) from None
    finally:
        logger.setLevel(level)
    size = _fixed_batch(program)
    if size is not None:
        module.register_forward_pre_hook(functools.partial(_check_batch, path, size))
    return module


def _fixed_batch(program: torch.export.ExportedProgram) -> int | None:
    """The batch size a program was exported for when its first input's batch dimension is
    fixed (exported without ``dynamic_shapes``), else None."""
    names = program.graph_signature.user_inputs
    node = next((n for n in program.graph.nodes if names and n.name == names[0]), None)
    value = None if node is None else node.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return None
    size = value.shape[0]
    return size if isinstance(size, int) else None


def _check_batch(path: str, size: int, module: nn.Module, args: tuple[Any, ...]) -> None:
    """Refuse, in one line, a batch the program of ``path`` was not exported for (torch's
    own guard raises a multi-line error deep in the call)."""
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[0] != size:
        advice = (  # fcrattack's batches end in a smaller one: only batch 1 fits them all
            ", or pass --batch-size 1 (Execution(batch_size=1) in Python)" if size == 1 else ""
        )
        raise ValueError(
            f"export:{path} takes batches of exactly {size} image(s) (it was exported with a "
            f"fixed batch dimension), not {x.shape[0]}: export it with a dynamic batch "
            f"(dynamic_shapes={{'x': {{0: torch.export.Dim('batch')}}}}){advice}"
        )
