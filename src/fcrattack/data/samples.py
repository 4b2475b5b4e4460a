"""The 40 CIFAR-10 test images bundled with the package (4 per class, lossless PNG copies of
the JPEG CIFAR-10 test split), for demos and quick checks without a data download."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import torch
from PIL import Image

from .dataset import Dataset, select


def samples(n: int | None = None, seed: int | None = None) -> Dataset:
    """The bundled samples as a ``Dataset`` (float [0, 1], (N, 3, 32, 32)), ids = file names.

    Images are listed round-robin over the classes, so the first n (``seed`` None) cover
    min(n, 10) classes; with a seed, a random subset of n is taken.
    """
    root = resources.files("fcrattack") / "samples"
    meta = json.loads((root / "labels.json").read_text(encoding="utf-8"))
    names = list(meta["labels"])
    names = [names[i] for i in select(len(names), n, seed)]
    arrays = []
    for name in names:
        with (root / name).open("rb") as f, Image.open(f) as img:
            arrays.append(np.asarray(img.convert("RGB"), dtype=np.uint8))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)
    labels = torch.tensor([meta["labels"][name] for name in names], dtype=torch.int64)
    return Dataset(images.contiguous(), labels, names, list(meta["classes"]))
