"""Data loaders. All return a ``Dataset`` of float images in [0, 1], (N, 3, H, W), and
int64 labels."""

from .cifar10 import CIFAR10_CLASSES, cifar10, cifar10_pickle
from .dataset import Dataset, select
from .decode import IMAGE_EXTENSIONS, Transform, read_images
from .folders import class_folder, image_folder
from .imagenet import imagenet_folder, list_imagenet
from .listing import (
    PREDICTED,
    ImageList,
    list_class_folders,
    list_flat_folder,
    match_classes,
    read_label_file,
)
from .samples import samples
from .shared import shared_root
from .stream import ImageStream, batches
from .transforms import POLICIES, resize_center_crop, resize_policy, stretch

__all__ = [
    "CIFAR10_CLASSES",
    "IMAGE_EXTENSIONS",
    "POLICIES",
    "PREDICTED",
    "Dataset",
    "ImageList",
    "ImageStream",
    "Transform",
    "batches",
    "cifar10",
    "cifar10_pickle",
    "class_folder",
    "image_folder",
    "imagenet_folder",
    "list_class_folders",
    "list_flat_folder",
    "list_imagenet",
    "match_classes",
    "read_images",
    "read_label_file",
    "resize_center_crop",
    "resize_policy",
    "samples",
    "select",
    "shared_root",
    "stretch",
]
