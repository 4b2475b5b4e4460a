"""Which operators a loaded ``torch.export`` program may call (``operator_refusal``).

``fcrattack.models.pt2_check`` keeps a ``.pt2`` archive from running Python code while it
loads; this module keeps its program from acting outside its own tensors when it runs.
Torch's verifier admits every registered operator as a graph node, and a program's JSON can
name any of them: ``aten.from_file`` maps a file into a tensor (reading any file the user can
read, and with ``shared=True`` writing the tensor's changes back into it), and extensions
register operators of their own that read and write files. So every operator a program calls,
in its graph and in every subgraph, must be one of torch's tensor operators (namespaces
``ALLOWED_NAMESPACES``) other than those that act outside the program's tensors
(``OUTSIDE_OPS``: files, the process's random state, grad mode, printing), a control-flow
operator of ``ALLOWED_HIGHER_ORDER`` (which call the program's own subgraphs), or a plain
arithmetic function on shape values (``PLAIN_FUNCTIONS``). No argument of a call may be a
Python function, operator or module (torch reads operator arguments from the file, and a
higher-order operator would call one).
"""

from __future__ import annotations

import math
import operator
import types
from collections.abc import Iterator
from typing import Any

import torch

#: the operator namespaces of torch's own tensor operators
ALLOWED_NAMESPACES = frozenset({"aten", "prims"})
#: operators of those namespaces that act outside the program's tensors
OUTSIDE_OPS = frozenset(
    {
        "from_file",  # maps a file (shared=True writes back into it)
        "save",  # writes a file
        "manual_seed",  # the process's random state
        "seed",
        "set_grad_enabled",  # the process's grad mode
        "_cufft_set_plan_cache_max_size",  # the process's FFT plan cache
        "_cufft_clear_plan_cache",
        "_print",  # the process's output
        "warn",
        "record_stream",  # the device's stream bookkeeping
        "wait",
    }
)
#: higher-order operators that call only the program's own subgraphs
ALLOWED_HIGHER_ORDER = frozenset(
    {
        "cond",
        "while_loop",
        "map_impl",
        "scan",
        "associative_scan",
        "invoke_subgraph",
        "wrap_with_set_grad_enabled",
        "wrap_with_autocast",
    }
)
#: functions a program may call on shape values (as torch's verifier admits them), and torch's
#: symbolic-shape functions
PLAIN_FUNCTIONS = frozenset(
    {
        *(getattr(operator, n) for n in ("getitem", "add", "mul", "sub", "truediv", "floordiv")),
        *(getattr(operator, n) for n in ("ge", "le", "gt", "lt", "eq", "ne", "mod", "pow")),
        *(getattr(operator, n) for n in ("and_", "or_", "not_", "neg", "abs")),
        *(getattr(operator, n) for n in ("lshift", "rshift")),
        math.ceil,
        math.floor,
        math.trunc,
        round,
        *(getattr(torch, f"sym_{n}") for n in ("int", "float", "ite", "max", "min", "not")),
        *(getattr(torch, f"sym_{n}") for n in ("sqrt", "sum")),
    }
)


def _op_problem(target: Any) -> str | None:
    """Why a program may not call ``target`` (module docstring), or None."""
    if isinstance(target, torch._ops.OpOverload):
        if target.namespace not in ALLOWED_NAMESPACES:
            return f"{target}, an operator outside torch's own ({target.namespace})"
        if target._opname in OUTSIDE_OPS:
            return f"{target}, which acts outside the program's tensors"
        return None
    if isinstance(target, torch._ops.HigherOrderOperator):
        if target.name() not in ALLOWED_HIGHER_ORDER:
            return f"the higher-order operator {target.name()}, which is not control flow"
        return None
    if target in PLAIN_FUNCTIONS:
        return None
    return f"{getattr(target, '__qualname__', type(target).__name__)}, which is not an operator"


def _argument_problem(value: Any) -> str | None:
    """Why ``value``, an argument of a call, may not be one (module docstring), or None."""
    if isinstance(value, torch.fx.Node):
        return None
    if callable(value) or isinstance(value, types.ModuleType):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        return f"the Python object {name or type(value).__name__}"
    return None


def _leaves(value: Any) -> Iterator[Any]:
    """The values inside ``value``, walking into tuples, lists, dicts and slices."""
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        yield from _leaves(list(value.values()))
    elif isinstance(value, slice):
        yield from _leaves((value.start, value.stop, value.step))
    else:
        yield value


def _node_problem(node: torch.fx.Node) -> str | None:
    """Why the program may not run the graph node ``node``, or None."""
    if node.op in ("call_module", "call_method"):
        return f"node {node.name} is a {node.op}, not an operator call"
    if node.op != "call_function":
        return None
    problem = _op_problem(node.target)
    if problem is not None:
        return f"node {node.name} calls {problem}"
    leaves = _leaves((node.args, node.kwargs))
    problem = next((p for v in leaves if (p := _argument_problem(v)) is not None), None)
    return None if problem is None else f"node {node.name} is given {problem} as an argument"


def operator_refusal(program: torch.export.ExportedProgram) -> str | None:
    """Why running the loaded ``program`` could act outside its own tensors (module
    docstring): its first graph node, in its graph or a subgraph, that calls an operator it
    may not call or is given a Python object as an argument; None when there is none."""
    for module in program.graph_module.modules():
        if isinstance(module, torch.fx.GraphModule):
            for node in module.graph.nodes:
                problem = _node_problem(node)
                if problem is not None:
                    return problem
    return None
