"""Whether the ``guards_code`` of a ``torch.export`` program is plain shape arithmetic
(``guard_problem``).

Torch writes each guard string into a Python function it ``exec``s when the program is turned
into a module (``torch.export._unlift``), so a guard must be checked as code. Exports with
related dynamic dimensions hold guards such as ``L['x'].size()[3] == L['x'].size()[2]`` (one
``Dim`` for height and width) or ``(1 + (((-1) + L['x'].size()[3]) // 2)) != 1``
(``Dim.AUTO``). A guard is accepted only where its syntax tree holds nothing but: integer and
boolean constants; the inputs ``L['name']`` (plain names), indexed by plain names or integers;
``.size()``, ``.stride()`` and ``.storage_offset()`` of an input with no arguments, indexed by an
integer; ``max``, ``min`` and ``abs`` of such expressions (torch writes ``max(1, L['x'].size()[3]
// 2)`` for pooling layers; the namespace torch runs guards in leaves them Python's built-ins);
arithmetic (``+ - * // %``), comparisons, ``and``/``or``/``not``. No other name, no attribute
but those three methods, no other call: nothing a guard holds can reach code.
"""

from __future__ import annotations

import ast
import re

#: the longest guard accepted (torch writes guards of a few dozen to a few hundred characters)
MAX_LENGTH = 10_000
#: how an input or a key inside one may be named (as the program's other names)
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_METHODS = frozenset({"size", "stride", "storage_offset"})
#: Python's built-in functions a guard may call (torch writes ``max(1, ...)`` for pooling)
_FUNCTIONS = frozenset({"max", "min", "abs"})
_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)
_UNARY = (ast.USub, ast.UAdd, ast.Not)
_COMPARISONS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _is_input(node: ast.AST) -> bool:
    """``L['name']``, possibly indexed further by plain names or integers."""
    if not isinstance(node, ast.Subscript):
        return False
    key = node.slice
    plain_key = isinstance(key, ast.Constant) and (
        (isinstance(key.value, str) and _PLAIN.fullmatch(key.value) is not None)
        or type(key.value) is int
    )
    if not plain_key:
        return False
    inner = node.value
    return (isinstance(inner, ast.Name) and inner.id == "L") or _is_input(inner)


def _is_shape_call(node: ast.AST) -> bool:
    """``<input>.size()`` (or ``stride()``, ``storage_offset()``) with no arguments."""
    return (
        isinstance(node, ast.Call)
        and not node.args
        and not node.keywords
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _METHODS
        and _is_input(node.func.value)
    )


def _plain(node: ast.AST) -> bool:
    """Whether the expression ``node`` is of the grammar of the module docstring."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, bool)
    if isinstance(node, ast.Subscript):  # an integer index of a shape call's result
        index = node.slice
        return (
            isinstance(index, ast.Constant)
            and type(index.value) is int
            and _is_shape_call(node.value)
        )
    if isinstance(node, ast.Call):  # storage_offset() is a number itself
        return _is_shape_call(node) or (
            isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and bool(node.args)
            and not node.keywords
            and all(_plain(a) for a in node.args)
        )
    if isinstance(node, ast.BinOp):
        return isinstance(node.op, _OPERATORS) and _plain(node.left) and _plain(node.right)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, _UNARY) and _plain(node.operand)
    if isinstance(node, ast.BoolOp):
        return all(_plain(v) for v in node.values)
    if isinstance(node, ast.Compare):
        return all(isinstance(op, _COMPARISONS) for op in node.ops) and all(
            _plain(v) for v in (node.left, *node.comparators)
        )
    return False


def guard_problem(code: object) -> str | None:
    """Why the guard ``code`` (an entry of a program's ``guards_code``) is not plain shape
    arithmetic on the program's inputs (module docstring), or None where it is."""
    if not isinstance(code, str):
        return f"a guard is a {type(code).__name__}, not a string"
    if any(ord(c) < 32 or ord(c) == 127 for c in code):
        return "a guard holds a control character"
    if len(code) > MAX_LENGTH:
        return f"a guard of {len(code)} characters is longer than {MAX_LENGTH}"
    try:
        plain = _plain(ast.parse(code, mode="eval").body)
    except (SyntaxError, ValueError):
        return f"the guard {code[:80]!r} is not an expression"
    except (RecursionError, MemoryError):  # the parser's or the walk's depth limits
        return f"the guard {code[:80]!r} is nested too deeply"
    return None if plain else f"the guard {code[:80]!r} is not plain shape arithmetic"
