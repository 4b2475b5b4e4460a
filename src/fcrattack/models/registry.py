"""Architecture registry, checkpoint loading and the embedded default model.

Every model returned here is wrapped in ``Normalized``, takes
images in [0, 1] of shape (N, 3, H, W), returns logits, and is in eval mode.
Checkpoints are always read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .archives import redirect
from .cifar_resnet import CifarResNet
from .cifar_resnet18_34 import CifarResNetB
from .cifar_vgg import CifarVGG, cam_layer_name
from .info import ModelInfo
from .normalize import Normalized
from .torch_errors import torch_reason

log = logging.getLogger(__name__)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DEFAULT_WEIGHTS = "resnet20_cifar10jpeg.pt"


@dataclass(frozen=True)
class Architecture:
    """How to build one CIFAR architecture: ``build(num_classes) -> nn.Module``."""

    name: str
    build: Callable[[int], nn.Module]
    cam_layer: str  # name inside the bare network (without the ``model.`` prefix)


def _vgg(name: str) -> Architecture:
    return Architecture(name, functools.partial(CifarVGG, name), cam_layer_name(name))


def _resnet(depth: int) -> Architecture:
    if depth in (18, 34):
        return Architecture(f"resnet{depth}", functools.partial(CifarResNetB, depth), "layer4")
    return Architecture(f"resnet{depth}", functools.partial(CifarResNet, depth), "layer3")


ARCHITECTURES: dict[str, Architecture] = {
    **{f"vgg{d}": _vgg(f"vgg{d}") for d in (11, 13, 16, 19)},
    **{f"resnet{d}": _resnet(d) for d in (18, 34, 20, 32, 44, 56, 110)},
}


def create_model(
    arch: str,
    *,
    num_classes: int = 10,
    mean: tuple[float, ...] = CIFAR10_MEAN,
    std: tuple[float, ...] = CIFAR10_STD,
) -> Normalized:
    """A freshly initialised CIFAR architecture behind a normalisation wrapper (train mode)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return Normalized(ARCHITECTURES[arch].build(num_classes), mean, std)


def read_checkpoint(path: str | Path) -> Any:
    """The content of the ``torch.save`` file ``path``, read with ``weights_only=True``
    (tensors and plain containers only: no pickled code runs); a TorchScript or
    ``torch.export`` archive is pointed to its own spec prefix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    hint = redirect(path, "checkpoint")
    if hint is not None:
        raise ValueError(f"{hint}, not a checkpoint")
    with path.open("rb") as f:
        head = f.read(4)
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # torch.save's zip, a legacy pickle
        what = "an empty file" if not head else "not a file that torch.save writes"
        raise ValueError(
            f"cannot read checkpoint {path}: {what} (a .pt/.pth file of torch.save: a "
            "state_dict or a dict holding one)"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        reason = torch_reason(exc).rstrip(".")
        if isinstance(exc, (RuntimeError, EOFError, OSError)) and head == b"PK\x03\x04":
            raise ValueError(f"cannot read checkpoint {path}: damaged file ({reason})") from None
        raise ValueError(
            f"cannot read checkpoint {path} safely (weights_only=True): {reason}. "
            "fcrattack never unpickles code from checkpoints; re-save it as a plain state_dict."
        ) from None


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state.items()}


def load_checkpoint(
    path: str | Path,
    arch: str | None = None,
    *,
    num_classes: int | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
) -> Normalized:
    """Load a model from a checkpoint file, strictly, in eval mode, with ``.info`` (CIFAR-10's
    classes and 32 px for a 10-class checkpoint; every architecture here is a CIFAR one).

    Understands fcrattack's own checkpoints (``{"arch", "state_dict", "mean", "std", ...}``, as
    written by ``fcrattack train``), akamaster's CIFAR ResNets (``{"state_dict"}`` with a
    ``module.`` prefix; ImageNet normalisation) and bare state dicts (``arch`` required): of the
    network (ImageNet normalisation unless ``mean``/``std`` are given) or of a model from
    ``create_model`` (``model.*`` keys plus its ``mean``/``std`` buffers).

    Args:
        path: the checkpoint file (read with ``weights_only=True``).
        arch: architecture name (``fcrattack.models.ARCHITECTURES``); None: the checkpoint's.
        num_classes: output count; None: the checkpoint's, else 10.
        mean, std: per-channel normalisation of [0, 1] inputs for a network's bare state
            dict; refused for checkpoints that hold their own (fcrattack's, ``create_model``'s).
    """
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, Mapping):
        raise ValueError(f"checkpoint {path} holds a {type(ckpt).__name__}, not a dict")
    # metadata only comes from a wrapper dict: a bare state dict's "mean"/"std" are tensors
    meta: Mapping[str, Any] = ckpt if "state_dict" in ckpt else {}
    state = meta.get("state_dict", ckpt)
    if not isinstance(state, Mapping):
        raise ValueError(f"checkpoint {path}: state_dict is a {type(state).__name__}, not a dict")
    arch = arch or meta.get("arch")
    if arch is None:
        raise ValueError(f"checkpoint {path} does not name its architecture: pass arch=")
    # state of the Normalized wrapper (fcrattack's own, or a bare create_model() state dict)
    own = "arch" in meta or ("mean" in state and "std" in state)
    if own and (mean is not None or std is not None):  # its buffers would replace them
        raise ValueError(
            f"checkpoint {path} holds its own normalisation (mean/std buffers): drop mean/std"
        )
    state = _strip_prefix(_strip_prefix(state, "module."), "model.") if not own else state
    if num_classes is None:
        num_classes = int(meta.get("num_classes", 10))
    if mean is None:
        mean = tuple(meta["mean"]) if "mean" in meta else IMAGENET_MEAN if not own else CIFAR10_MEAN
    if std is None:
        std = tuple(meta["std"]) if "std" in meta else IMAGENET_STD if not own else CIFAR10_STD
    model = create_model(arch, num_classes=num_classes, mean=mean, std=std)
    target = model if own else model.model
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # another architecture or class count: say which, briefly
        raise ValueError(
            f"checkpoint {path} does not fit architecture {arch!r} "
            f"({num_classes} classes): {_mismatch(target, state)}"
        ) from exc
    cam_layer = f"model.{ARCHITECTURES[arch].cam_layer}"
    model.info = (
        ModelInfo.cifar10(str(path), cam_layer)
        if num_classes == 10
        else ModelInfo(str(path), 32, 32, cam_layer=cam_layer)
    )
    return model.eval()


def _mismatch(model: nn.Module, state: Mapping[str, Any]) -> str:
    """One line on how a state dict differs from a model's (missing, unexpected, shapes)."""
    own = model.state_dict()
    missing = [
        k
        for k in own
        if k not in state  # BatchNorm tolerates a missing counter
        and not k.endswith("num_batches_tracked")
    ]
    extra = [k for k in state if k not in own]
    shapes = [
        k
        for k in own
        if k in state
        and hasattr(state[k], "shape")
        and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = [
        f"{len(v)} {what} (e.g. {v[0]})"
        for what, v in (
            ("missing keys", missing),
            ("unexpected keys", extra),
            ("shape mismatches", shapes),
        )
        if v
    ]
    return "; ".join(parts) or "state dict does not load"


def default_model() -> Normalized:
    """The embedded default: a CIFAR-10 ResNet-20 trained by ``fcrattack train`` on the JPEG
    CIFAR-10 training split shipped in ``../shared/data`` (accuracy in the README)."""
    ref = resources.files("fcrattack") / "weights" / DEFAULT_WEIGHTS
    with resources.as_file(ref) as path:
        model = load_checkpoint(path)
    model.info = ModelInfo.cifar10("default", model.info.cam_layer if model.info else None)
    return model
