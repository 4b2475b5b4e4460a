"""Model files that are zip archives: TorchScript (``torchscript:``) and ``torch.export``
``.pt2`` (``export:``), read with one-line errors naming the file and the form expected.

A ``.pt2`` file is read into memory once and checked before torch sees it
(``fcrattack.models.pt2_check``: loading it must not run code from it), and its program once
torch has read it (``fcrattack.models.pt2_ops``: running it must not act outside its own
tensors); a file that does not load, or only for another batch size, is one line naming it.
TorchScript files run code by design (their ``__setstate__`` methods run at load):
``torchscript:`` is for trusted files only.
"""

from __future__ import annotations

import functools
import io
import logging
import lzma
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree

from .pt2_check import refusal
from .pt2_ops import operator_refusal
from .torch_errors import torch_reason

#: an entry name that only TorchScript archives hold, and one only ``.pt2`` archives hold
TORCHSCRIPT_ENTRIES = ("constants.pkl", "code/")
EXPORT_ENTRIES = ("archive_format", "models/")
#: what reading a damaged zip archive raises (bad headers, encryption, unknown or corrupt
#: compression, an entry name flagged UTF-8 that is not)
UNREADABLE = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
    UnicodeDecodeError,
)


def archive_kind(path: str | Path) -> str | None:
    """``"torchscript"`` or ``"export"`` when ``path`` is such a zip archive, else None."""
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):  # ValueError: a name that is not UTF-8
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
        reason = refusal(data)
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
            reason = operator_refusal(program)
            module = None if reason is not None else torch.export.unflatten(program)
    except Exception as exc:  # torch raises many kinds for a file it cannot read
        raise ValueError(
            f"export:{path}: not a loadable torch.export program ({expected}): {torch_reason(exc)}"
        ) from None
    finally:
        logger.setLevel(level)
    if module is None:
        raise ValueError(
            f"export:{path}: refused, its program may call only torch's tensor operators: {reason}"
        )
    if program.call_spec.in_spec != _ONE_INPUT:  # fcrattack calls model(x), nothing else
        inputs = [str(name) for name in program.graph_signature.user_inputs]
        raise ValueError(
            f"export:{path}: its program takes {len(inputs)} input(s) "
            f"({', '.join(inputs)[:200]}) other than as one positional argument; a classifier "
            "here takes one batch of images, model(x): export a module whose forward takes the "
            "images alone, as torch.export.export(model, (x,))"
        )
    sizes = _batch_range(program)
    if sizes != (1, None):
        module.register_forward_pre_hook(functools.partial(_check_batch, path, sizes))
    # on the module itself, not a wrapper: Grad-CAM finds its layers by their own names
    module.forward = functools.partial(_grad_mode_kept, module.forward)  # type: ignore[method-assign]
    return module


def _grad_mode_kept(forward: Any, *args: Any, **kwargs: Any) -> Any:
    """``forward(*args, **kwargs)`` with the caller's grad mode restored however it ends
    (torch's no-grad regions of a program leave grad mode off when their body raises)."""
    with torch.set_grad_enabled(torch.is_grad_enabled()):
        return forward(*args, **kwargs)


#: the input structure of ``model(x)``: one positional argument, no keywords
_ONE_INPUT = pytree.tree_flatten(((0,), {}))[1]


def _batch_range(program: torch.export.ExportedProgram) -> tuple[int, int | None]:
    """The batch sizes (smallest, largest or None) a program's first input takes: one size
    when exported without ``dynamic_shapes``, else the bounds of its batch ``Dim`` (torch
    runs batches of 1 and 2 below a lower bound of 2, its 0/1 specialisation)."""
    names = program.graph_signature.user_inputs
    node = next((n for n in program.graph.nodes if names and n.name == names[0]), None)
    value = None if node is None else node.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.dim() == 0:
        return 1, None
    size = value.shape[0]
    if isinstance(size, int):
        return size, size
    bounds = program.range_constraints.get(size.node.expr)
    if bounds is None:
        return 1, None
    low, high = bounds.lower, bounds.upper  # sympy numbers; torch's infinity is no Integer
    lower = int(low) if low.is_Integer and low > 2 else 1
    return lower, int(high) if high.is_Integer else None


def _check_batch(
    path: str, sizes: tuple[int, int | None], module: nn.Module, args: tuple[Any, ...]
) -> None:
    """Refuse, in one line, a batch the program of ``path`` was not exported for (torch's
    own guard raises a multi-line error deep in the call)."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return
    low, high = sizes
    n = x.shape[0]
    if low <= n and (high is None or n <= high):
        return
    dynamic = "dynamic_shapes={'x': {0: torch.export.Dim('batch')}}"
    if low == high:
        advice = (  # fcrattack's batches end in a smaller one: only batch 1 fits them all
            ", or pass --batch-size 1 (Execution(batch_size=1) in Python)" if low == 1 else ""
        )
        raise ValueError(
            f"export:{path} takes batches of exactly {low} image(s) (it was exported with a "
            f"fixed batch dimension), not {n}: export it with a dynamic batch ({dynamic}){advice}"
        )
    advice = (  # One-Pixel evaluates eval_batch_size candidate images per forward pass
        f", or keep every forward pass within {high} images: --batch-size {high} or less "
        f"(Execution(batch_size={high}) in Python), and for onepixel --opt "
        f"eval_batch_size={high}"
        if low == 1 and high is not None
        else ""
    )
    raise ValueError(
        f"export:{path} takes batches of {low} to {high if high is not None else 'any number of'}"
        f" images (its batch dimension was exported with bounds), not {n}: export it with an "
        f"unbounded batch ({dynamic}){advice}"
    )
