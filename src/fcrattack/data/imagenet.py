"""ImageNet-style validation folders: ``val/<wnid>/*.JPEG``, label = sorted wnid index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from .dataset import Dataset
from .decode import Transform
from .listing import ImageList, list_class_folders
from .transforms import resize_center_crop


def list_imagenet(
    root: str | Path, *, size: int = 224, resize: int = 256, transform: Transform | None = None
) -> ImageList:
    """The files of ``root`` (the ``val`` folder or its parent), labelled by sorted WordNet id
    (ImageNet's class order), resized and centre-cropped to ``size`` after resizing the
    shorter side to ``resize`` (or given ``transform`` instead). Class names come from a
    ``classes.json`` beside ``val`` when present (list of {index, wnid, name}), else the
    wnids."""
    root = Path(root)
    val = root / "val" if (root / "val").is_dir() else root
    transform = transform or resize_center_crop(size, resize)
    listing = list_class_folders(val, transform=transform)
    meta = val.parent / "classes.json"
    if meta.is_file():
        names = {c["wnid"]: c["name"] for c in json.loads(meta.read_text())}
        listing = replace(listing, classes=[names.get(w, w) for w in listing.classes])
    return listing


def imagenet_folder(
    root: str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    size: int = 224,
    resize: int = 256,
) -> Dataset:
    """:func:`list_imagenet` read into memory: ``n``/``seed`` select the first n images (seed
    None) or a seeded random subset of n."""
    return list_imagenet(root, size=size, resize=resize).select(n, seed).read()
