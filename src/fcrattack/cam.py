"""Batched, GPU-resident Grad-CAM (Selvaraju et al., 2017) and the FCR mask.

For images x (N, C, H, W) in [0, 1] and classes c (N,):
  A = activations (N, K, u, v) of the chosen layer, lambda = mean_{ij} dY_c/dA (N, K),
  L = ReLU(sum_k lambda_k A_k), upsampled bilinearly to (H, W) and min-max normalised per
  image to [0, 1]. An all-constant map (e.g. all zero: no positive evidence) normalises to 0.

Works when the model's parameters are frozen and inside ``torch.no_grad()``; leaves no hooks
on the model and restores its train/eval mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .models.mode import eval_mode
from .validation import check_images, check_labels, check_logits

log = logging.getLogger(__name__)

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@contextmanager
def _record_outputs(model: nn.Module, names: list[str] | None) -> Iterator[list]:
    """Forward hooks that append (name, module, output) for ``names`` (None = every module),
    in the order modules finish; all hooks are removed on exit."""
    records: list = []
    handles = []
    try:
        for name, module in model.named_modules():
            if names is None or name in names:
                handles.append(module.register_forward_hook(
                    lambda m, i, o, name=name: records.append((name, m, o))))
        yield records
    finally:
        for h in handles:
            h.remove()


def _auto_layer(records: list) -> tuple[str, torch.Tensor]:
    """The deepest 4-D feature map with spatial size > 1 that is not a pooling output."""
    pooled = {id(o) for _, m, o in records if isinstance(m, _POOLS)}
    for name, _, out in reversed(records):
        if (isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[2] * out.shape[3] > 1
                and id(out) not in pooled and out.requires_grad):
            return name, out
    raise ValueError("the model has no convolutional feature map with spatial size > 1 for "
                     "Grad-CAM (no 4-D module output found); pass layer= explicitly")


def find_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the layer Grad-CAM uses by default for ``model`` on inputs shaped like ``x``."""
    with eval_mode(model, warn=False), torch.enable_grad(), _record_outputs(model, None) as rec:
        model(x[:1].detach().clone().requires_grad_(True))
        return _auto_layer(rec)[0]


def gradcam(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
            layer: str | None = None, normalize: bool = True) -> torch.Tensor:
    """Grad-CAM maps (N, H, W) in [0, 1] for classes ``y`` (N,) (None: predicted class).

    ``layer`` is a module name from ``model.named_modules()``; None picks the deepest feature
    map with spatial size > 1 that is not a pooling output (ResNets: the last residual stage;
    VGG: the last convolution's activation, not the final max-pool).
    """
    check_images(x)
    if layer is not None and layer not in dict(model.named_modules()):
        raise ValueError(f"model has no layer named {layer!r}")
    xin = x.detach().clone().requires_grad_(True)  # gives A a graph even with frozen params
    with eval_mode(model, warn=False), torch.enable_grad(), \
            _record_outputs(model, None if layer is None else [layer]) as rec:
        logits = model(xin)
        check_logits(logits, x.shape[0])
        if not rec:
            raise ValueError(f"layer {layer!r} was not called in the forward pass")
        if layer is None:
            _, acts = _auto_layer(rec)
        else:
            acts = rec[-1][2]
            if not (isinstance(acts, torch.Tensor) and acts.dim() == 4):
                raise ValueError(f"layer {layer!r} does not output a 4-D feature map")
        if y is None:
            y = logits.argmax(1)
        check_labels(y, x.shape[0], logits.shape[1])
        score = logits.gather(1, y.to(logits.device).long()[:, None]).sum()
        (grads,) = torch.autograd.grad(score, acts)
    weights = grads.mean((2, 3), keepdim=True)
    cam = F.relu((weights * acts.detach()).sum(1, keepdim=True))
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
            log.warning("%d empty FCR mask(s) (all-zero Grad-CAM); using the whole image there",
                        int(is_empty.sum()))
            mask = torch.where(is_empty[:, None, None, None], torch.ones_like(mask), mask)
    return mask


def fcr_region(model: nn.Module, x: torch.Tensor, cls: torch.Tensor | None, *, t: float = 0.2,
               layer: str | None = None, empty: str = "full") -> torch.Tensor:
    """The FCR mask (N, 1, H, W) of x for classes ``cls`` (None: predicted): Grad-CAM, then
    threshold t. The paper uses the true class."""
    return fcr_mask(gradcam(model, x, cls, layer=layer), t, empty=empty)
