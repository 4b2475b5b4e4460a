"""Loading what an experiment names: its models (``ModelSpec``) and data (``Part``),
from the shared root; and the small JSON files of an output folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...base.store import write_json
from ...data import Dataset, cifar10, imagenet_folder
from ...models import load_checkpoint, load_model
from .spec import ModelSpec, Part


def load_spec_model(spec: ModelSpec, root: Path, device: torch.device) -> nn.Module:
    """The model a ``ModelSpec`` names, on ``device``, in eval mode."""
    if not any(c in spec.source for c in "/*"):  # a name of fcrattack.load_model
        model = load_model(spec.source)
    else:
        matches = sorted(root.glob(spec.source))
        if not matches:
            raise FileNotFoundError(f"model {spec.name}: no file matches {root / spec.source}")
        if len(matches) > 1:  # which one is meant cannot be told: never pick one silently
            names = ", ".join(m.name for m in matches)
            raise ValueError(
                f"model {spec.name}: {len(matches)} files match {root / spec.source} "
                f"({names}): keep one"
            )
        model = load_checkpoint(matches[0], spec.arch)
    return model.to(device).eval()


def load_part_data(part: Part, root: Path, size: int | None = None) -> Dataset:
    """The seeded image subset of a part; ImageNet images at ``size`` px (None: 224), resized
    by 256/224 of it and centre-cropped (the same files for every size)."""
    d = part.data
    if d.dataset == "cifar10":
        if size not in (None, 32):
            raise ValueError(f"CIFAR-10 images are 32 px, a model asks for {size}")
        return cifar10(root / d.root, d.split, n=d.n, seed=d.seed)
    if d.dataset == "imagenet":
        size = size or 224
        return imagenet_folder(
            root / d.root, n=d.n, seed=d.seed, size=size, resize=round(size * 256 / 224)
        )
    raise ValueError(f"unknown dataset {d.dataset!r}")


def update_json(path: Path, key: str, value: Any) -> None:
    """Set ``key`` of the JSON object in ``path`` (created if missing), atomically."""
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    write_json(path, data)
