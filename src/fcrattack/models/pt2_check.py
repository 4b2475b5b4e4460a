"""Whether loading a ``torch.export`` ``.pt2`` archive could run code from it (``refusal``).

``torch.export.load`` unpickles parts of the archive in full (sample inputs after a failed
``weights_only=True`` load, weights and constants marked ``use_pickle``, custom-object
constants) and evaluates the program's symbolic-shape expressions with sympy (an ``eval``). So
the archive is checked, in memory, before torch sees it. Its central directory must lie where
its end record says (torch reads it there, zipfile just before the end record: bytes before the
archive or a second directory could show each a different one), and entry names are compared as
torch compares them, ASCII case ignored (two names that differ only in case are refused).
Entries are then checked by what torch does with each rather than by what its bytes look like
or what they are named: an entry named by a weights or constants config with ``use_pickle``
true must be a ``torch.save`` blob that loads with ``weights_only=True``; one named only with
``use_pickle`` false is raw tensor bytes; otherwise an entry is read as text (the format
markers, ``extra/``) or, named ``*.json``, must be JSON whose symbolic-shape expressions are
plain arithmetic on shape symbols; every other entry, whatever torch would do with it, must be
a ``torch.save`` blob that loads with ``weights_only=True`` (or be empty). Constants that torch
reads as custom objects, and payload names that leave their folder, are refused outright.
Strings of a program's JSON that torch could write into the Python code FX generates (input,
node, parameter and buffer names, module paths) must be plain names, and no string holds a
control character; its pytree specs may nest only plain containers and name no module
(``fcrattack.models.pt2_specs``: torch imports what they name), and ``guards_code`` (Python
that torch runs) must be plain shape arithmetic (``fcrattack.models.pt2_guards``). Torch's
verifier then admits only operators as graph nodes.
"""

from __future__ import annotations

import functools
import importlib
import io
import json
import posixpath
import re
import struct
import zipfile
from collections.abc import Iterator
from typing import Any

import torch

from .pt2_guards import guard_problem
from .pt2_specs import spec_problem
from .torch_errors import torch_reason

#: entries of a ``.pt2`` archive (below its root folder) that torch reads as text
TEXT_ENTRIES = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
)
#: folders of compiled programs that torch may load beside the exported one
COMPILED_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia/")
#: the folders of the payload configs (``*_config.json``), whose entries name payload files
PAYLOAD_DIRS = ("data/weights/", "data/constants/")
#: the prefix of constant payloads that are tensors (others are custom objects torch unpickles)
TENSOR_CONSTANT_PREFIX = "tensor_"
#: a token of a symbolic-shape expression: numbers, a quoted shape symbol or number (sympy's
#: ``Float('0.5', precision=53)``), names, operators
_TOKEN = re.compile(
    r"\s+|\d+(?:\.\d*)?(?:e[-+]?\d+)?|'[a-z]+\d+'|'-?\d+(?:\.\d*)?(?:e[-+]?\d+)?'"
    r"|[A-Za-z_]\w*|\*\*|//|==|!=|<=|>=|[-+*/%(),<>=~&|]"
)
_SYMBOL = re.compile(r"[a-z]+\d+")
#: a name torch may write into generated code: letters, digits, ``_``, ``.`` and ``-`` only
#: (no quote, bracket, space or operator that could end a name and start code)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]*")
#: keys of a program's JSON whose strings torch reads as text, never as names in code: stack
#: traces (comments), spec and version strings, expressions (checked on their own), string
#: arguments (literals), ``custom`` and ``from_node`` (JSON decoded as data), ``source_fn_stack``
#: (the functions a node came from, looked up as attributes of torch, never called)
FREE_TEXT_KEYS = frozenset(
    {"stack_trace", "torch_fn", "torch_version", "expr_str", "as_string", "as_strings"}
    | {"nn_module_stack", "custom", "from_node", "source_fn_stack"}
)
#: keys whose strings are serialised pytree specs (``_spec_strings``: names inside)
SPEC_KEYS = frozenset({"in_spec", "out_spec"})
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
        "precision",
    }
)


@functools.cache
def _names() -> frozenset[str]:
    """``SYMPY_NAMES`` and the classes of torch's sympy functions (FloorDiv, ...)."""
    functions = importlib.import_module("torch.utils._sympy.functions")  # imports sympy
    own = {n for n, v in vars(functions).items() if not n.startswith("_") and isinstance(v, type)}
    return SYMPY_NAMES | own


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
    """The entries (by ``_folded`` name) that payload configs name as raw tensor bytes
    (``use_pickle`` false) and those torch unpickles (named so by a config, or the legacy
    weights, constants and sample inputs ``data/*/<model>.pt`` of every program, which torch
    reads whatever the configs say), and why the configs are refused (a name with a control
    character or leaving its folder, a custom-object constant)."""
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
            if any(ord(c) < 32 or ord(c) == 127 for c in path_name):  # torch's lookup ends at NUL
                return raw, pickled, f"{name} names a payload with a control character"
            if posixpath.normpath(path_name) != path_name or "/" in path_name:
                return raw, pickled, f"{name} names a payload outside its folder ({path_name!r})"
            if folder == "data/constants/" and not path_name.startswith(TENSOR_CONSTANT_PREFIX):
                return raw, pickled, f"{name} holds a custom-object constant ({path_name})"
            (pickled if unpickled else raw).add(folder + _folded(path_name.encode("utf-8")))
    for name in entries:  # what torch reads of a program without a config: pickles
        if name.startswith("models/") and name.endswith(".json"):
            model = name[len("models/") : -len(".json")]
            pickled.update(f"{d}{model}.pt" for d in (*PAYLOAD_DIRS, "data/sample_inputs/"))
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
        if bad:
            return f"{name} has a symbolic expression that is not arithmetic"
        if isinstance(parsed, dict) and (problem := _guards_problem(parsed.pop("guards_code", []))):
            return f"{name}: {problem} (torch runs guards as Python)"
        return _names_problem(name, parsed) if name.startswith("models/") else None
    return _weights_only(name, data)


def _guards_problem(guards: Any) -> str | None:
    """Why a program's ``guards_code`` could be more than shape arithmetic, or None."""
    if not isinstance(guards, list):
        return "guards_code is not a list"
    return next((p for g in guards if (p := guard_problem(g)) is not None), None)


def _strings(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string) pair of parsed JSON, a list's items under the list's key."""
    if isinstance(value, dict):
        for k, item in value.items():
            yield from _strings(item, str(k))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, str):
        yield key, value


def _names_problem(name: str, program: Any) -> str | None:
    """Why the program JSON ``name`` holds a string torch could write into generated code
    (FX writes input, node, parameter and buffer names into the Python it compiles): outside
    ``FREE_TEXT_KEYS`` every string must be a plain name (``_PLAIN_NAME``), a module path of
    ``nn_module_stack`` too, and no string holds a control character (a stack trace may
    hold line breaks: FX comments out each line); None when none does."""
    for key, text in _strings(program):
        allowed = "\n\t" if key == "stack_trace" else ""
        if any((ord(c) < 32 and c not in allowed) or ord(c) == 127 for c in text):
            return f"{name} holds a control character in {key!r}"
        if key == "nn_module_stack":
            pairs = [(*part.split(",")[:2], "")[:2] for part in text.split(";")]
            # a key of a module called twice ends in @<n>
            if not all(_PLAIN_NAME.fullmatch(k.replace("@", "")) for k, _ in pairs) or not all(
                _PLAIN_NAME.fullmatch(path) for _, path in pairs
            ):
                return f"{name} holds a module path that is not a plain name ({text[:60]!r})"
        elif key in SPEC_KEYS:
            problem = spec_problem(text, _PLAIN_NAME)
            if problem is not None:
                return f"{name} holds an {key} with {problem}"
        elif key not in FREE_TEXT_KEYS and not _PLAIN_NAME.fullmatch(text):
            return f"{name} holds a name that is not a plain name: {key} {text[:60]!r}"
    return None


def _folded(name: bytes) -> str:
    """An entry name as torch's zip reader (miniz) compares names: its bytes with ASCII
    letters in lower case (latin-1 text, one character per byte)."""
    return name.lower().decode("latin-1")


def _stored_name(info: zipfile.ZipInfo) -> bytes:
    """The bytes of an entry's name as the archive stores them (zipfile decodes them)."""
    return info.filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def _directory_problem(data: bytes) -> str | None:
    """Why the central directory that zipfile reads (found before the end record) may not be
    the one torch reads (at the offset the end record states): an end record that is not the
    archive's last bytes, or a directory that does not end where the end record begins (bytes
    before the archive, or a second directory); None when they are one."""
    end = data.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(data):
        return "it has no end record"
    size, offset, comment = struct.unpack_from("<IIH", data, end + 12)
    if end + 22 + comment != len(data):
        return "its end record is not at its end"
    stop = end
    locator = end - 20
    if locator >= 0 and data[locator : locator + 4] == b"PK\x06\x07":  # zip64 (torch's too)
        stop = struct.unpack_from("<Q", data, locator + 8)[0]
        if data[stop : stop + 4] != b"PK\x06\x06" or stop + 56 != locator:
            return "its zip64 end record is not where its locator says"
        size64, offset64 = struct.unpack_from("<QQ", data, stop + 40)
        # a reader may take either record's sizes: they must agree (or be the zip64 mark)
        if (size, offset) != (size64, offset64) and 0xFFFFFFFF not in (size, offset):
            return "its two end records disagree"
        size, offset = size64, offset64
    elif 0xFFFFFFFF in (size, offset):
        return "its zip64 end record is missing"
    if offset + size != stop:
        return "its central directory is not where its end record says (bytes before it?)"
    return None


def refusal(data: bytes) -> str | None:
    """Why the ``.pt2`` archive ``data`` would run code when loaded, or None. Names are
    compared as torch compares them (``_folded``: ASCII case ignored)."""
    reason = _directory_problem(data)
    if reason is not None:
        return reason
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        names = [_folded(_stored_name(i)) for i in infos]
        roots = {n.partition("/")[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            return "its entries are not all below one root folder (as torch.export.save writes)"
        if len(set(names)) != len(names):
            return (
                "it holds two entries of one name, letter case aside (torch and this check "
                "could read different ones)"
            )
        # torch reads entries below the archive's one root folder (its name is free)
        entries = {n.partition("/")[2]: z.read(i) for n, i in zip(names, infos, strict=True)}
    raw, pickled, reason = _payloads(entries)
    if reason is not None:
        return reason
    for name, entry in entries.items():
        reason = _entry_refusal(name, entry, raw, pickled)
        if reason is not None:
            return reason
    return None
