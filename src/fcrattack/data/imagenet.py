"""ImageNet-style validation folders: ``val/<wnid>/*.JPEG``, label = sorted wnid index."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .dataset import Dataset
from .folders import class_folder


def resize_center_crop(size: int = 224, resize: int = 256) -> Callable[[Image.Image], Image.Image]:
    """The standard evaluation transform: shorter side to ``resize`` (bilinear), centre crop."""

    def transform(img: Image.Image) -> Image.Image:
        w, h = img.size
        scale = resize / min(w, h)
        img = img.resize(
            (max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BILINEAR
        )
        w, h = img.size
        left, top = (w - size) // 2, (h - size) // 2
        return img.crop((left, top, left + size, top + size))

    return transform


def imagenet_folder(
    root: str | Path,
    *,
    n: int | None = None,
    seed: int | None = None,
    size: int = 224,
    resize: int = 256,
) -> Dataset:
    """Read ``root`` (the ``val`` folder or its parent). Class names come from a
    ``classes.json`` beside ``val`` when present (list of {index, wnid, name}), else the wnids."""
    root = Path(root)
    val = root / "val" if (root / "val").is_dir() else root
    ds = class_folder(val, n=n, seed=seed, transform=resize_center_crop(size, resize))
    meta = val.parent / "classes.json"
    if meta.is_file():
        names = {c["wnid"]: c["name"] for c in json.loads(meta.read_text())}
        ds.classes = [names.get(w, w) for w in ds.classes]
    return ds
