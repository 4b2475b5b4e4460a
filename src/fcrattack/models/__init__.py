"""Models: CIFAR architectures, normalisation wrapper, checkpoints, the default model, and
``load_model``, which resolves every model spec (names, checkpoints, ``torchvision:``,
``timm:``, ``torchscript:``, ``export:``, ``py:``)."""

from .efficientnet import (
    EFFICIENTNET_LITE0_CAM_LAYER,
    EFFICIENTNET_LITE_CAM_LAYER,
    efficientnet_lite,
    efficientnet_lite0,
)
from .info import ModelInfo, imagenet_classes, read_class_names
from .normalize import Normalized
from .registry import (
    ARCHITECTURES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    create_model,
    default_model,
    load_checkpoint,
)
from .sources import PREFIXES, load_model

__all__ = [
    "ARCHITECTURES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "EFFICIENTNET_LITE0_CAM_LAYER",
    "EFFICIENTNET_LITE_CAM_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PREFIXES",
    "ModelInfo",
    "Normalized",
    "create_model",
    "default_model",
    "efficientnet_lite",
    "efficientnet_lite0",
    "imagenet_classes",
    "load_checkpoint",
    "load_model",
    "read_class_names",
]
