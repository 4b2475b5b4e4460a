"""ImageNet-style validation folders: ``val/<wnid>/*.JPEG``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .dataset import Dataset
from .decode import Transform
from .listing import ImageList, list_class_folders
from .transforms import resize_center_crop


def list_imagenet(
    root: str | Path,
    *,
    transform: Transform | None,
    classes: Sequence[str] | None = None,
    wnids: Sequence[str] | None = None,
) -> ImageList:
    """The files of ``root`` (the ``val`` folder or its parent), each image through
    ``transform`` (e.g. ``resize_center_crop``). Folders are matched to ``classes`` /
    ``wnids`` (a model's, see ``match_classes``) when given, else to
    a ``classes.json`` beside ``val`` (a list of {index, wnid, name}), else labelled in sorted
    WordNet-id order (ImageNet's class order when every class is there)."""
    root = Path(root)
    val = root / "val" if (root / "val").is_dir() else root
    meta = val.parent / "classes.json"
    if classes is None and meta.is_file():
        entries = sorted(json.loads(meta.read_text()), key=lambda c: int(c["index"]))
        classes = [c["name"] for c in entries]
        wnids = [c["wnid"] for c in entries]
    return list_class_folders(val, classes=classes, wnids=wnids, transform=transform)


def imagenet_folder(
    root: str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    size: int = 224,
    resize: int = 256,
) -> Dataset:
    """``list_imagenet`` read into memory: ``n``/``seed`` select the first n images (seed
    None) or a seeded random subset of n."""
    listing = list_imagenet(root, transform=resize_center_crop(size, resize))
    return listing.select(n, seed).read()
