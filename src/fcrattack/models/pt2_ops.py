"""Which operators a loaded ``torch.export`` program may call (``operator_refusal``).

``fcrattack.models.pt2_check`` keeps a ``.pt2`` archive from running Python code while it
loads; this module keeps its program from acting outside its own tensors when it runs.
Torch's verifier admits every registered operator as a graph node, and a program's JSON can
name any of them with any arguments: ``aten.from_file`` maps a file into a tensor (with
``shared=True`` the program's writes go back into the file), extensions register operators
that read files, and some of torch's own kernels trust their arguments (``_reshape_alias``
makes a view of any size over any tensor; backward kernels such as
``max_pool2d_with_indices_backward`` write where their ``indices`` say, unchecked). So every
operator a program calls, in its graph and every subgraph, must be on an allow-list: the
``aten`` operators of image classifiers as ``torch.export.export`` writes them
(``ALLOWED_OPS``: layers, activations, pooling and resampling, elementwise arithmetic,
reductions and shape operators, whose kernels refused or clamped out-of-range sizes, indices,
pads and scales when probed with them; division by rounding mode is refused,
``REFUSED_OVERLOADS``, window arguments are bounded, ``MAX_WINDOW``, and a dtype or device
must be one, ``TYPED_ARGUMENTS``), a control-flow operator that calls the program's own
subgraphs (``ALLOWED_HIGHER_ORDER``), or arithmetic on shape values (``PLAIN_FUNCTIONS``). No
argument of a call may be a Python function, operator or module (torch reads operator
arguments from the file, and a higher-order operator would call one). A program that needs
another operator is refused, naming it: such a model can be given as ``py:`` (trusted code).
The allow-list narrows what a crafted program can reach; it cannot prove every allowed kernel
safe against every argument, and a program may still take any time and memory (a long
``while_loop``, huge tensors), as any model may.
"""

from __future__ import annotations

import math
import operator
import types
from collections.abc import Iterator
from typing import Any

import torch

#: the ``aten`` operators a program may call (by name, any overload), by kind: those of image
#: classifiers as ``torch.export.export`` writes them (in-place forms where classifiers use
#: them). Torch's internal kernels that decomposed programs call instead
#: (``_native_batch_norm_legit_no_training``, ``native_layer_norm``, ...) are not listed: some
#: trust their arguments (a batch norm reads and writes its statistics by the input's channel
#: count, whatever their size).
OPS_BY_KIND = {
    "layers": "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear "
    "mm bmm addmm baddbmm matmul einsum scaled_dot_product_attention batch_norm layer_norm "
    "group_norm instance_norm rms_norm dropout dropout_ feature_dropout alpha_dropout",
    "activations": "relu relu_ relu6 hardtanh hardtanh_ hardswish hardswish_ hardsigmoid "
    "hardsigmoid_ sigmoid sigmoid_ silu silu_ gelu gelu_ tanh tanh_ elu elu_ selu selu_ celu "
    "celu_ leaky_relu leaky_relu_ softplus mish mish_ prelu threshold threshold_ glu softmax "
    "log_softmax",
    "pooling and resampling": "max_pool1d max_pool2d max_pool3d max_pool2d_with_indices "
    "avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d "
    "adaptive_avg_pool3d adaptive_max_pool1d adaptive_max_pool2d upsample_nearest1d "
    "upsample_nearest2d upsample_nearest3d upsample_linear1d upsample_bilinear2d "
    "upsample_bicubic2d upsample_trilinear3d pixel_shuffle pixel_unshuffle pad",
    "arithmetic": "add add_ sub sub_ rsub mul mul_ div div_ neg abs exp expm1 log log1p log2 "
    "sqrt rsqrt pow reciprocal square clamp clamp_ clamp_min clamp_max minimum maximum where "
    "sign floor ceil round trunc frac remainder fmod erf sin cos lerp addcmul addcdiv "
    "logical_and logical_or logical_not logical_xor eq ne gt ge lt le isnan nan_to_num "
    "masked_fill masked_fill_ fill_ zero_ copy_",
    "reductions": "mean sum amax amin max min argmax argmin var var_mean std std_mean prod "
    "logsumexp norm linalg_vector_norm any all cumsum",
    "shapes and new tensors": "view view_as reshape flatten unflatten permute transpose t "
    "unsqueeze squeeze expand expand_as contiguous clone alias detach detach_ lift_fresh_copy "
    "slice select narrow split split_with_sizes chunk unbind cat stack repeat tile roll flip "
    "index index_select movedim triu tril sym_size sym_stride sym_numel "
    "_assert_tensor_metadata _assert_scalar _assert_async sym_constrain_range_for_size "
    "scalar_tensor full full_like zeros zeros_like ones ones_like arange new_zeros new_ones "
    "new_full to type_as",
}
ALLOWED_OPS = frozenset(name for names in OPS_BY_KIND.values() for name in names.split())
#: overloads refused although their operator is allowed: integer division by a rounding mode
#: (the int64 minimum divided by -1 traps: SIGFPE ends the process); overloads on plain
#: numbers (``remainder.int``: a program's shape arithmetic is ``PLAIN_FUNCTIONS``) and those
#: writing into an ``out=`` argument are refused too (``_tensor_overload``)
REFUSED_OVERLOADS = frozenset({"Tensor_mode", "Scalar_mode"})
#: operators on plain numbers a program may call: the checks of its symbolic shapes
SHAPE_CHECKS = frozenset({"_assert_scalar", "sym_constrain_range_for_size"})
#: arguments (by schema name) that size a window a kernel walks element by element, and the
#: largest value they may hold (a pooling window of 2**40 over 4 values runs for hours)
WINDOW_ARGUMENTS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_padding"})
MAX_WINDOW = 2**16
#: arguments (by schema name) that must hold a value of their kind, never a plain int
TYPED_ARGUMENTS = {
    "dtype": torch.dtype,
    "layout": torch.layout,
    "memory_format": torch.memory_format,
    "device": torch.device,
}
#: higher-order operators that call only the program's own subgraphs (grad mode, which
#: ``wrap_with_set_grad_enabled`` leaves changed when its body raises, is restored by the
#: loader)
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
        if target.namespace != "aten" or target._opname not in ALLOWED_OPS:
            return f"{target}, which is not among the operators fcrattack runs from a file"
        if target._overloadname in REFUSED_OVERLOADS:
            return f"{target}, a division by rounding mode (an integer one can end the process)"
        if not _tensor_overload(target):
            return f"{target}, an overload on plain numbers or writing into an out= argument"
        return None
    if isinstance(target, torch._ops.HigherOrderOperator):
        if target.name() not in ALLOWED_HIGHER_ORDER:
            return f"the higher-order operator {target.name()}, which is not control flow"
        return None
    if target in PLAIN_FUNCTIONS:
        return None
    return f"{getattr(target, '__qualname__', type(target).__name__)}, which is not an operator"


def _tensor_overload(op: torch._ops.OpOverload) -> bool:
    """Whether ``op`` takes or returns a tensor (or checks shapes: ``SHAPE_CHECKS``) and
    writes into no keyword (``out=``) argument."""
    schema = op._schema
    writes = any(a.kwarg_only and a.alias_info and a.alias_info.is_write for a in schema.arguments)
    tensors = any("Tensor" in str(x.type) for x in (*schema.arguments, *schema.returns))
    return not writes and (tensors or op._opname in SHAPE_CHECKS)


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
    if problem is not None:
        return f"node {node.name} is given {problem} as an argument"
    return _value_problem(node)


def _value_problem(node: torch.fx.Node) -> str | None:
    """Why an argument value of the operator call ``node`` is refused, or None: a window
    argument (``WINDOW_ARGUMENTS``) above ``MAX_WINDOW``, or a dtype, layout, memory format
    or device that is not one (``TYPED_ARGUMENTS``: an overload that takes a dtype as a plain
    int, ``to.prim_dtype``, turns any int into one unchecked: a crash or a garbage type)."""
    if not isinstance(node.target, torch._ops.OpOverload):
        return None
    names = [a.name for a in node.target._schema.arguments]
    given = {**dict(zip(names, node.args, strict=False)), **node.kwargs}
    for name in WINDOW_ARGUMENTS & given.keys():
        big = [v for v in _leaves(given[name]) if isinstance(v, int) and abs(v) > MAX_WINDOW]
        if big:
            return (
                f"node {node.name} gives {node.target} a {name} of {big[0]}, above "
                f"{MAX_WINDOW} (a kernel walks its window element by element)"
            )
    for name in TYPED_ARGUMENTS.keys() & given.keys():
        value, kind = given[name], TYPED_ARGUMENTS[name]
        if value is not None and not isinstance(value, kind):
            what = f"torch.{kind.__name__}"
            return f"node {node.name} gives {node.target} a {name} of {value!r}, not a {what}"
    return None


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
