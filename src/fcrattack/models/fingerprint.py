"""A short digest of a model (``model_fingerprint``): what a resumed run checks to be sure it
attacks with the model its records were made with."""

from __future__ import annotations

import functools
import hashlib
import io
import sys
import types
from pathlib import Path

import torch
from torch import nn

#: plain values of a module's public attributes that the digest covers (a Conv2d's stride,
#: a factory model's scale)
_PLAIN = (bool, int, float, str, type(None))
#: functions held by a module instance (a replaced ``forward``)
_FUNCTIONS = (types.FunctionType, types.MethodType, functools.partial)
#: packages whose code is pinned by their versions (fcrattack's is in every record)
_VERSIONED = ("torch", "fcrattack")


def model_fingerprint(model: nn.Module) -> str:
    """A digest (16 hex digits of SHA-256) of the model's class; of its parameter and buffer
    names, shapes, dtypes and values (non-persistent buffers and tensor constants of loaded
    programs too, which the state dict leaves out); of every module's public plain
    attributes (numbers, strings, flags, tuples of them); of the graph of every submodule
    that has one (``torch.export`` programs: the same weights may run another program); of
    every TorchScript module as it saves (its code and every attribute); of the names of
    functions a module instance holds (a replaced ``forward``) and of its hooks; and of the
    source files that define the model's own classes and those functions (those of packages
    other than torch and fcrattack: a factory whose code changed). Code that those files
    import from elsewhere is not covered."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    tensors = dict(model.state_dict())
    scripted: list[str] = []
    sources: set[str] = set()
    for prefix, module in model.named_modules(remove_duplicate=False):
        for attr, value in vars(module).items():
            if isinstance(value, torch.Tensor) and attr not in ("_parameters", "_buffers"):
                tensors.setdefault(f"{prefix}.{attr}" if prefix else attr, value)
            elif _plain(value) and not attr.startswith("_") and attr != "training":
                h.update(f"{prefix}.{attr}={value!r};".encode())
        hooks = (module._forward_pre_hooks, module._forward_hooks, module._backward_hooks)
        functions = [v for v in vars(module).values() if isinstance(v, _FUNCTIONS)]
        for fn in [*functions, *(f for d in hooks for f in d.values())]:
            # a forward replaced on the instance, or a hook: where its code is defined
            fn = getattr(fn, "__func__", fn)
            h.update(f"{prefix}:{getattr(fn, '__qualname__', type(fn).__name__)};".encode())
            sources.add(getattr(fn, "__module__", None) or "")
        for name, buffer in module.named_buffers(prefix=prefix, recurse=False):
            tensors.setdefault(name, buffer)
        graph = getattr(module, "graph", None)
        if isinstance(module, torch.jit.ScriptModule):
            if not any(prefix.startswith(f"{s}.") or not s for s in scripted):
                scripted.append(prefix)
                h.update(f"{prefix}:{_saved(module)}".encode())
        elif isinstance(graph, torch.fx.Graph):
            h.update(f"{prefix}:{graph}".encode())
        sources.add(type(module).__module__)
    for name, t in tensors.items():
        h.update(f"{name}:{t.layout}:{t.dtype}:{_values(t)}".encode())
    for name in sorted(sources):
        h.update(f"{name}:{_source_digest(name)}".encode())
    return h.hexdigest()[:16]


def _values(t: torch.Tensor) -> str:
    """A digest of tensor ``t``'s shape and values: dense, sparse or nested (their parts), or
    only the shape of a tensor without data (on the meta device)."""
    t = t.detach()
    if t.is_nested:
        return ",".join(_values(part) for part in t.unbind())
    if t.is_meta:
        return f"meta{tuple(t.shape)}"
    if t.layout != torch.strided:
        t = t.to_dense()
    flat = t.cpu().contiguous().reshape(-1)
    return (
        f"{tuple(t.shape)}:{hashlib.sha256(flat.view(torch.uint8).numpy().tobytes()).hexdigest()}"
    )


def _plain(value: object) -> bool:
    """Whether ``value`` is a plain value, or a tuple or list of them."""
    if isinstance(value, (tuple, list)):
        return all(isinstance(v, _PLAIN) for v in value)
    return isinstance(value, _PLAIN)


def _saved(module: torch.jit.ScriptModule) -> str:
    """A digest of a TorchScript module as ``torch.jit.save`` writes it."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def _source_digest(module_name: str) -> str:
    """A digest of the source file of Python module ``module_name``; empty for torch's and
    fcrattack's modules and for modules without a readable file."""
    if module_name.split(".")[0] in _VERSIONED:
        return ""
    path = getattr(sys.modules.get(module_name), "__file__", None)
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""
