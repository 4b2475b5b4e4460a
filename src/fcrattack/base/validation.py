"""Input checks shared by every public entry point: fail early with a message naming the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """The torch device ``name`` names (cpu, cuda, cuda:N, mps), checked to exist here; None
    gives cuda when available, else cpu."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }
    if not available.get(device.type, False):
        here = ", ".join(k for k, v in available.items() if v)
        raise ValueError(f"device {str(name)!r} is not available here ({here})")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {str(name)!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def check_model(model: Any) -> None:
    """model must be a torch.nn.Module (a plain function has no layers, mode or device)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; wrap a "
            "function in an nn.Module"
        )


def _check_data(t: torch.Tensor, name: str) -> None:
    """t must hold values: a tensor on the meta device has a shape only."""
    if t.is_meta:
        raise ValueError(f"{name} is on the meta device, which holds no values: pass real data")


def check_images(x: torch.Tensor, name: str = "x") -> None:
    """x must be a floating tensor (N, C, H, W) with finite values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must have shape (N, C, H, W), got {tuple(x.shape)} "
            f"(rank {x.dim()}); add a batch dimension with x.unsqueeze(0)"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating tensor with values in [0, 1], got {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    _check_data(x, name)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if x.shape[1] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} has an empty channel or spatial dimension: {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    lo, hi = x.min().item(), x.max().item()
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} must lie in [0, 1] (fcrattack models take un-normalised "
            f"images), got values in [{lo:.4g}, {hi:.4g}]"
        )


def check_labels(y: torch.Tensor, n: int, num_classes: int | None = None, name: str = "y") -> None:
    """y must be an integer tensor (N,) with values in [0, num_classes)."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise TypeError(f"{name} must hold integer class indices, got {y.dtype}")
    _check_data(y, name)
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},) to match the images, got {tuple(y.shape)}")
    if n and y.min().item() < 0:
        raise ValueError(f"{name} has negative class indices (min {y.min().item()})")
    if num_classes is not None and n and y.max().item() >= num_classes:
        raise ValueError(
            f"{name} has class index {y.max().item()} but the model has {num_classes} classes"
        )


def check_mask(mask: Any, x: torch.Tensor) -> torch.Tensor:
    """A mask broadcastable to x's (N, C, H, W): (N, 1, H, W), (N, C, H, W) or (N, H, W), as a
    tensor, numpy array or nested list, of bools or 0/1 numbers (a soft map is refused).
    Returns it as (N, 1 or C, H, W) float on x's device."""
    if isinstance(mask, (np.ndarray, list, tuple)):
        mask = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a tensor or array, got {type(mask).__name__}")
    _check_data(mask, "mask")
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    n, c, h, w = x.shape
    if (
        mask.dim() != 4
        or mask.shape[0] != n
        or mask.shape[2:] != (h, w)
        or mask.shape[1] not in (1, c)
    ):
        raise ValueError(
            f"mask must have shape ({n}, 1, {h}, {w}) or ({n}, {c}, {h}, {w}), "
            f"got {tuple(mask.shape)}"
        )
    mask = mask.to(device=x.device, dtype=x.dtype)
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError(
            "mask values must be 0 or 1 (where the perturbation may go); a soft map is "
            "refused, since attacks would read it differently: threshold it first, e.g. "
            "fcrattack.fcr_mask(cam, t)"
        )
    return mask


#: why a gradient attack or Grad-CAM cannot run on a model whose output has no gradient
NO_GRADIENT = (
    "the model's output does not depend on its input through autograd (it is detached, or "
    "computed under torch.no_grad() or outside torch): gradient attacks and Grad-CAM need "
    "d logits / d x; use a model whose forward keeps the graph, or a score-based attack "
    "(onepixel)"
)


def check_differentiable(logits: torch.Tensor) -> None:
    """Raise ValueError (``NO_GRADIENT``) when ``logits``, computed from an input that
    requires grad, carry no gradient."""
    if not logits.requires_grad:
        raise ValueError(NO_GRADIENT)


def check_logits(out: Any, n: int) -> None:
    """The model must return finite floating-point logits of shape (N, K) for a batch of n
    images (``check_output``, then the shape, then NaN and inf)."""
    check_output(out)
    if out.dim() != 2 or out.shape[0] != n:
        raise ValueError(
            f"the model must return logits of shape ({n}, num_classes), got {tuple(out.shape)}"
        )
    bad = ~torch.isfinite(out.detach())
    if bool(bad.any()):
        images, values = int(bad.any(1).sum()), int(bad.sum())
        raise ValueError(
            f"the model returned NaN or infinite logits for {images} of {n} images ({values} "
            f"of {out.numel()} values): check its weights and its input normalisation"
        )


def check_output(out: Any) -> None:
    """What a model returns must be one floating-point tensor of logits: anything else (a
    tuple such as ``(logits, aux)``, a dict, None) is a ValueError saying what it returned."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"the model must return a logits tensor (N, num_classes), got {describe(out)}: wrap "
            "it in an nn.Module whose forward returns the logits alone (e.g. its output[0])"
        )
    check_floating(out)


def describe(value: Any) -> str:
    """A short description of a model output, e.g. ``tuple (Tensor (2, 10), None)``."""
    if isinstance(value, torch.Tensor):
        return f"Tensor {tuple(value.shape)}"
    if value is None:
        return "None"
    if isinstance(value, (tuple, list)):
        parts = [describe(v) for v in value[:4]] + (["..."] if len(value) > 4 else [])
        return f"{type(value).__name__} ({', '.join(parts)})"
    if isinstance(value, dict):
        keys = ", ".join(repr(k) for k in list(value)[:4]) + (", ..." if len(value) > 4 else "")
        return f"dict with keys {keys}"
    return type(value).__name__


def check_floating(out: torch.Tensor) -> None:
    """The model's output must be floating point (integer scores have no gradient); the part
    of ``check_output`` that a scripted ``Normalized`` runs."""
    if not out.is_floating_point():
        raise ValueError(
            f"the model must return floating-point logits, got {out.dtype}: attacks and "
            "Grad-CAM differentiate them (return the scores before any rounding or argmax)"
        )


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of the file ``path`` (a byte-order mark dropped); a file that does not
    decode is a ValueError naming it as ``what`` (e.g. "label file")."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8"
        ) from None


def read_json(text: str, path: str | Path, what: str, **hooks: Any) -> Any:
    """``json.loads(text, **hooks)`` of the file ``path``; invalid JSON is a ValueError naming
    the file as ``what``."""
    try:
        return json.loads(text, **hooks)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON ({exc})") from None
