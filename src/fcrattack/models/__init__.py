"""Models: CIFAR architectures, normalisation wrapper, checkpoints and the default model."""

from .normalize import Normalized
from .registry import (
    ARCHITECTURES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    EFFICIENTNET_LITE0_CAM_LAYER,
    IMAGENET_MEAN,
    IMAGENET_STD,
    create_model,
    default_model,
    efficientnet_lite0,
    load_checkpoint,
    load_model,
)

__all__ = [
    "ARCHITECTURES",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "EFFICIENTNET_LITE0_CAM_LAYER",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Normalized",
    "create_model",
    "default_model",
    "efficientnet_lite0",
    "load_checkpoint",
    "load_model",
]
