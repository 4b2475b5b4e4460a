"""Batched, device-resident class activation maps and the FCR mask.

For images x (N, C, H, W) in [0, 1] and classes c (N,), with A = activations (N, K, u, v) of
the chosen layer and G = dY_c/dA (one backward pass for the batch), each method is a map
L (N, u, v), upsampled bilinearly to (H, W) and min-max normalised per image to [0, 1] (an
all-constant map, e.g. all zero: no positive evidence, normalises to 0):

- ``gradcam`` (Selvaraju et al., 2017; the FCR paper's): L = ReLU(sum_k w_k A_k),
  w_k = mean_ij G_kij;
- ``gradcam++`` (Chattopadhay et al., 2018, closed form for an exponential score):
  w_k = sum_ij a_kij ReLU(G_kij), a = G^2 / (2 G^2 + sum_ij A_k * G^3) (0 where G = 0);
- ``xgradcam`` (Fu et al., 2020): w_k = sum_ij G_kij A_kij / sum_ij A_kij;
- ``layercam`` (Jiang et al., 2021): L = ReLU(sum_k ReLU(G_k) * A_k), weights per position.

The layer is a module name from ``model.named_modules()``. A module called more than once in
one forward pass (e.g. an activation module shared by the stem and the head) is ambiguous by
name alone: name the call as ``"name@k"`` (k-th call, from 0; negative from the end), or the
name is refused. The automatic choice is the deepest 4-D output with spatial size > 1 that is
not a pooling output, i.e. the last convolution's activation (ResNets: the last residual
stage; VGG: the last convolution's ReLU, not the final max-pool; EfficientNet-Lite:
``model._swish@1``, the head's activation, since ``_swish`` also follows the stem).

Works when the model's parameters are frozen, inside ``torch.no_grad()`` and inside
``torch.inference_mode()``; leaves no hooks on the model and restores its train/eval mode.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .models.info import ModelInfo
from .models.mode import eval_mode
from .validation import check_images, check_labels, check_logits, check_model
from .warn import warn

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
def _record_calls(model: nn.Module, names: set[str] | None) -> Iterator[list[_Call]]:
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


def _auto_layer(records: list[_Call]) -> tuple[str, torch.Tensor]:
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


def _split_layer(layer: str) -> tuple[str, int | None]:
    """``"name@k"`` -> (name, k); ``"name"`` -> (name, None)."""
    name, sep, index = layer.rpartition("@")
    if not sep:
        return layer, None
    try:
        return name, int(index)
    except ValueError:
        raise ValueError(f"layer {layer!r}: the call after '@' must be an integer") from None


def _named_layer(records: list[_Call], layer: str) -> torch.Tensor:
    """The output of the call ``layer`` names (see the module docstring)."""
    name, index = _split_layer(layer)
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
        _record_calls(model, None) as rec,
    ):
        model(x[:1].detach().clone().requires_grad_(True))
        return _auto_layer(rec)[0]


def _gradcam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return (grads.mean((2, 3), keepdim=True) * acts).sum(1)


def _gradcam_pp(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    g2 = grads.pow(2)
    denom = 2 * g2 + acts.sum((2, 3), keepdim=True) * grads.pow(3)
    alpha = torch.where(grads != 0, g2 / torch.where(denom != 0, denom, 1), 0)
    return ((alpha * F.relu(grads)).sum((2, 3), keepdim=True) * acts).sum(1)


def _xgradcam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    total = acts.sum((2, 3), keepdim=True)
    weights = (grads * acts).sum((2, 3), keepdim=True) / (total + 1e-7)
    return (weights * acts).sum(1)


def _layercam(acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    return (F.relu(grads) * acts).sum(1)


#: the CAM methods: (activations, gradients) (N, K, u, v) -> map before ReLU (N, u, v)
CAM_METHODS = {
    "gradcam": _gradcam,
    "gradcam++": _gradcam_pp,
    "xgradcam": _xgradcam,
    "layercam": _layercam,
}


def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    layer: str | None = None,
    normalize: bool = True,
    method: str = "gradcam",
) -> torch.Tensor:
    """Class activation maps (N, H, W) in [0, 1] for classes ``y`` (N,) (None: predicted
    class): Grad-CAM by default.

    Args:
        model: a classifier of images x (N, C, H, W) in [0, 1] to logits (N, classes).
        x: the images (N, C, H, W), float in [0, 1].
        y: the classes (N,) whose evidence is mapped; None: each image's predicted class.
        layer: a module name from ``model.named_modules()``, ``"name@k"`` for the k-th call of
            a module called several times, or None: the layer ``model.info`` names (models of
            ``fcrattack.load_model``), else the automatic choice (module docstring).
        normalize: min-max normalise each map to [0, 1]; False returns the raw ReLU map (>= 0).
        method: ``"gradcam"``, ``"gradcam++"``, ``"xgradcam"`` or ``"layercam"`` (module
            docstring); all share one forward and one backward pass.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {list(CAM_METHODS)}")
    check_model(model)
    check_hookable(model)
    check_images(x)
    layer = layer or info_layer(model)
    if layer is not None and _split_layer(layer)[0] not in dict(model.named_modules()):
        raise ValueError(f"model has no layer named {_split_layer(layer)[0]!r}")
    names = None if layer is None else {_split_layer(layer)[0]}
    with torch.inference_mode(False):
        xin = x.detach().clone().requires_grad_(True)  # a graph even with frozen params
        with eval_mode(model, warn=False), torch.enable_grad(), _record_calls(model, names) as rec:
            logits = model(xin)
            check_logits(logits, x.shape[0])
            acts = _auto_layer(rec)[1] if layer is None else _named_layer(rec, layer)
            if y is None:
                y = logits.argmax(1)
            check_labels(y, x.shape[0], logits.shape[1])
            cls = y.to(logits.device).long().clone()  # a normal tensor even in inference mode
            score = logits.gather(1, cls[:, None]).sum()
            (grads,) = torch.autograd.grad(score, acts)
        cam = F.relu(CAM_METHODS[method](acts.detach(), grads)).unsqueeze(1)
        cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)[:, 0]
    return normalize_maps(cam) if normalize else cam


def normalize_maps(cam: torch.Tensor) -> torch.Tensor:
    """Min-max normalise each map of (N, H, W) to [0, 1]; constant maps become all 0."""
    flat = cam.flatten(1)
    lo = flat.amin(1)[:, None, None]
    span = (flat.amax(1) - flat.amin(1))[:, None, None]
    return torch.where(span > 0, (cam - lo) / span.clamp_min(1e-12), torch.zeros_like(cam))


def fcr_mask(cam: torch.Tensor, t: float = 0.2, *, empty: str = "full") -> torch.Tensor:
    """Binary FCR mask (N, 1, H, W) float: 1 where the normalised map ``cam`` (N, H, W) >= t.

    ``t`` must lie in [0, 1]; t = 0 selects the whole image. A mask can only come out empty
    when the map is all zero (no positive Grad-CAM evidence). ``empty`` decides what then
    happens: ``"full"`` (default) uses the whole image for that image and logs a warning,
    ``"keep"`` keeps the empty mask (the attack cannot change that image).
    """
    if not 0 <= t <= 1:
        raise ValueError(f"threshold t must lie in [0, 1], got {t}")
    if cam.dim() != 3:
        raise ValueError(f"cam must have shape (N, H, W), got {tuple(cam.shape)}")
    if empty not in ("full", "keep"):
        raise ValueError(f"empty must be 'full' or 'keep', got {empty!r}")
    mask = (cam >= t).unsqueeze(1).to(cam.dtype if cam.is_floating_point() else torch.float32)
    if empty == "full":
        is_empty = mask.flatten(1).amax(1) == 0
        if is_empty.any():
            warn(
                f"{int(is_empty.sum())} empty FCR mask(s) (all-zero Grad-CAM); using the "
                "whole image there (empty='keep' keeps them empty)"
            )
            mask = torch.where(is_empty[:, None, None, None], torch.ones_like(mask), mask)
    return mask


def fcr_region(
    model: nn.Module,
    x: torch.Tensor,
    cls: torch.Tensor | None,
    *,
    t: float = 0.2,
    layer: str | None = None,
    empty: str = "full",
) -> torch.Tensor:
    """The FCR mask (N, 1, H, W) of x for classes ``cls`` (None: predicted): Grad-CAM, then
    threshold t. The paper uses the true class. At t = 0 the mask is the whole image and
    Grad-CAM is not computed (so any model works there, convolutional or not)."""
    if t == 0:
        check_images(x)
        return torch.ones_like(x[:, :1])
    return fcr_mask(gradcam(model, x, cls, layer=layer), t, empty=empty)
