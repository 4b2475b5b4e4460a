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

Works when the model's parameters are frozen, inside ``torch.no_grad()`` and inside
``torch.inference_mode()``; leaves no hooks on the model and restores its train/eval mode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..base.validation import (
    check_differentiable,
    check_images,
    check_labels,
    check_logits,
    check_model,
)
from ..base.warn import warn
from ..models.mode import eval_mode
from .layers import auto_layer, check_hookable, info_layer, named_layer, record_calls, split_layer


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
    modules = [n for n, _ in model.named_modules()]
    if layer is not None and (name := split_layer(layer)[0]) not in modules:
        close = [n for n in modules if n.endswith(f".{name}")][:3]  # e.g. the wrapper's model.
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ValueError(f"model has no layer named {name!r}{hint}")
    names = None if layer is None else {split_layer(layer)[0]}
    with torch.inference_mode(False):
        xin = x.detach().clone().requires_grad_(True)  # a graph even with frozen params
        with eval_mode(model, warn=False), torch.enable_grad(), record_calls(model, names) as rec:
            logits = model(xin)
            check_logits(logits, x.shape[0])
            check_differentiable(logits)
            acts = auto_layer(rec)[1] if layer is None else named_layer(rec, layer)
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

    ``t`` must lie in [0, 1]; t = 0 selects the whole image. A map holding NaN is refused. A
    mask can only come out empty when the map is all zero (no positive Grad-CAM evidence).
    ``empty`` decides what then happens: ``"full"`` (default) uses the whole image for that
    image and logs a warning, ``"keep"`` keeps the empty mask (the attack cannot change that
    image).
    """
    if not 0 <= t <= 1:
        raise ValueError(f"threshold t must lie in [0, 1], got {t}")
    if cam.dim() != 3:
        raise ValueError(f"cam must have shape (N, H, W), got {tuple(cam.shape)}")
    if empty not in ("full", "keep"):
        raise ValueError(f"empty must be 'full' or 'keep', got {empty!r}")
    if cam.is_floating_point():
        nan = torch.isnan(cam).flatten(1).any(1)
        if nan.any():
            bad = nan.nonzero().flatten().tolist()
            raise ValueError(
                f"cam holds NaN values (image {', '.join(map(str, bad[:5]))}"
                f"{', ...' if len(bad) > 5 else ''}): a map of non-finite logits or gradients "
                "selects no region"
            )
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


class Region(NamedTuple):
    """An FCR and the map it came from: mask (N, 1, H, W) float 0/1; cam (N, H, W) in [0, 1],
    the normalised Grad-CAM map (None at t = 0, where the region is the whole image)."""

    mask: torch.Tensor
    cam: torch.Tensor | None


def fcr_region_map(
    model: nn.Module,
    x: torch.Tensor,
    cls: torch.Tensor | None,
    *,
    t: float = 0.2,
    layer: str | None = None,
    empty: str = "full",
) -> Region:
    """The FCR of x (N, C, H, W) in [0, 1] for classes ``cls`` (N,) (None: predicted) and its
    map: Grad-CAM of ``layer``, then threshold ``t`` in [0, 1] (``fcr_mask``, with its
    ``empty`` rule). The paper uses the true class. At t = 0 the mask is the whole image and
    Grad-CAM is not computed (so any model works there, convolutional or not)."""
    if t == 0:
        check_images(x)
        return Region(torch.ones_like(x[:, :1]), None)
    cam = gradcam(model, x, cls, layer=layer)
    return Region(fcr_mask(cam, t, empty=empty), cam)


def fcr_region(
    model: nn.Module,
    x: torch.Tensor,
    cls: torch.Tensor | None,
    *,
    t: float = 0.2,
    layer: str | None = None,
    empty: str = "full",
) -> torch.Tensor:
    """The FCR mask (N, 1, H, W) of ``fcr_region_map`` (same arguments)."""
    return fcr_region_map(model, x, cls, t=t, layer=layer, empty=empty).mask
