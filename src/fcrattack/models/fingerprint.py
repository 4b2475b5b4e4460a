"""A short digest of a model (``model_fingerprint``): what a resumed run checks to be sure it
attacks with the model its records were made with."""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def model_fingerprint(model: nn.Module) -> str:
    """A digest (16 hex digits of SHA-256) of the model's class; of its parameter and buffer
    names, shapes, dtypes and values (non-persistent buffers and tensor constants of loaded
    programs too, which the state dict leaves out); and of the graph of every submodule that
    has one (``torch.export`` and TorchScript programs: the same weights may run another
    program)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    tensors = dict(model.state_dict())
    for prefix, module in model.named_modules(remove_duplicate=False):
        for attr, value in vars(module).items():
            if isinstance(value, torch.Tensor) and attr not in ("_parameters", "_buffers"):
                tensors.setdefault(f"{prefix}.{attr}" if prefix else attr, value)
        for name, buffer in module.named_buffers(prefix=prefix, recurse=False):
            tensors.setdefault(name, buffer)
    for name, t in tensors.items():
        flat = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(flat.view(torch.uint8).numpy().tobytes())
    for prefix, module in model.named_modules(remove_duplicate=False):
        graph = getattr(module, "graph", None)
        if isinstance(graph, (torch.fx.Graph, torch._C.Graph)):
            h.update(f"{prefix}:{graph}".encode())
    return h.hexdigest()[:16]
