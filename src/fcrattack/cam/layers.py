"""Which layer Grad-CAM reads, found by recording the module calls of one forward pass.

The layer is a module name from ``model.named_modules()``. A module called more than once in
one forward pass (e.g. an activation module shared by the stem and the head) is ambiguous by
name alone: name the call as ``"name@k"`` (k-th call, from 0; negative from the end), or the
name is refused. The automatic choice is the deepest 4-D output with spatial size > 1 that is
not a pooling output, i.e. the last convolution's activation (ResNets: the last residual
stage; VGG: the last convolution's ReLU, not the final max-pool; EfficientNet-Lite:
``model._swish@1``, the head's activation, since ``_swish`` also follows the stem).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ..base.validation import check_model
from ..models.info import ModelInfo
from ..models.mode import eval_mode

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclass
class _Call:
    """One module call of a forward pass: its name, module, output, and which call it was."""

    name: str
    module: nn.Module
    output: object
    index: int

    def label(self, calls: dict[str, int]) -> str:
        """``name``, or ``name@k`` when the module was called more than once."""
        return self.name if calls[self.name] == 1 else f"{self.name}@{self.index}"


@contextmanager
def record_calls(model: nn.Module, names: set[str] | None) -> Iterator[list[_Call]]:
    """Forward hooks that append a ``_Call`` for the modules ``names`` (None = every
    module) in the order their calls finish; all hooks are removed on exit."""
    records: list[_Call] = []
    counts: dict[str, int] = {}
    handles = []

    def hook(name: str, module: nn.Module, output: object) -> None:
        records.append(_Call(name, module, output, counts.get(name, 0)))
        counts[name] = counts.get(name, 0) + 1

    try:
        for name, module in model.named_modules():
            if isinstance(module, torch.jit.ScriptModule):  # cannot be hooked
                continue
            if names is None or name in names:
                handles.append(
                    module.register_forward_hook(lambda m, i, o, name=name: hook(name, m, o))
                )
        yield records
    finally:
        for h in handles:
            h.remove()


def _call_counts(records: list[_Call]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r.name] = counts.get(r.name, 0) + 1
    return counts


#: why Grad-CAM refuses a TorchScript model, and what to do instead
SCRIPTED = (
    "Grad-CAM cannot hook the layers of a TorchScript model (its forward pass runs inside "
    "TorchScript, past Python's hooks): save the model with torch.export and load it as "
    "export:PATH, or load it as py:package.module:factory"
)


def check_hookable(model: nn.Module) -> None:
    """Refuse a model holding TorchScript modules, whose layers Grad-CAM cannot hook."""
    if any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
        raise ValueError(SCRIPTED)


def auto_layer(records: list[_Call]) -> tuple[str, torch.Tensor]:
    """The deepest 4-D feature map with spatial size > 1 that is not a pooling output."""
    pooled = {id(r.output) for r in records if isinstance(r.module, _POOLS)}
    counts = _call_counts(records)
    for r in reversed(records):
        out = r.output
        if (
            isinstance(out, torch.Tensor)
            and out.dim() == 4
            and out.shape[2] * out.shape[3] > 1
            and id(out) not in pooled
            and out.requires_grad
        ):
            return r.label(counts), out
    raise ValueError(
        "the model has no convolutional feature map with spatial size > 1 for "
        "Grad-CAM (no 4-D module output found); pass layer= explicitly"
    )


def split_layer(layer: str) -> tuple[str, int | None]:
    """``"name@k"`` -> (name, k); ``"name"`` -> (name, None)."""
    name, sep, index = layer.rpartition("@")
    if not sep:
        return layer, None
    try:
        return name, int(index)
    except ValueError:
        raise ValueError(f"layer {layer!r}: the call after '@' must be an integer") from None


def named_layer(records: list[_Call], layer: str) -> torch.Tensor:
    """The output of the call ``layer`` names (see the module docstring)."""
    name, index = split_layer(layer)
    calls = [r for r in records if r.name == name]
    if not calls:
        raise ValueError(f"layer {name!r} was not called in the forward pass")
    if index is None:
        if len(calls) > 1:
            raise ValueError(
                f"layer {name!r} is called {len(calls)} times in one forward pass, so it is "
                f"ambiguous; name the call, e.g. {name + '@' + str(len(calls) - 1)!r} for the "
                "last, or choose another layer"
            )
        index = 0
    if not -len(calls) <= index < len(calls):
        raise ValueError(f"layer {name!r} is called {len(calls)} time(s); no call {index}")
    out = calls[index].output
    if not (isinstance(out, torch.Tensor) and out.dim() == 4):
        raise ValueError(f"layer {layer!r} does not output a 4-D feature map")
    return out


def info_layer(model: nn.Module) -> str | None:
    """The Grad-CAM layer a loaded model names in its ``.info``
    (``fcrattack.models.ModelInfo``), or None."""
    info = getattr(model, "info", None)
    return info.cam_layer if isinstance(info, ModelInfo) else None


def find_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the layer Grad-CAM uses by default for ``model`` on inputs shaped like ``x``
    (``name@k`` for a module called several times): the one ``model.info`` names, else the
    automatic choice."""
    check_model(model)
    check_hookable(model)
    named = info_layer(model)
    if named is not None:
        return named
    with (
        torch.inference_mode(False),
        eval_mode(model, warn=False),
        torch.enable_grad(),
        record_calls(model, None) as rec,
    ):
        model(x[:1].detach().clone().requires_grad_(True))
        return auto_layer(rec)[0]
