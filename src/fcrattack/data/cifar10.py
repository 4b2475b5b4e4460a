"""CIFAR-10 from the official python-pickle release or from class folders of images."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .dataset import Dataset, select
from .folders import class_folder

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class _ArraysOnly(pickle.Unpickler):
    """Unpickler for the CIFAR batch files: plain containers and numpy arrays only.

    Besides the globals of the official (Python 2) files, this allows what Python 3 writes for
    the same data: ``_codecs.encode`` (bytes at pickle protocol <= 2) and numpy's
    ``_frombuffer`` (arrays at protocol 5). None of these can run arbitrary code.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch file")


def _read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file missing: {path}")
    with path.open("rb") as f:
        try:
            d = _ArraysOnly(f, encoding="bytes").load()
        except pickle.UnpicklingError as exc:
            raise pickle.UnpicklingError(f"{path}: {exc}") from exc
    if not isinstance(d, dict):
        raise ValueError(f"{path} is not a CIFAR-10 batch (holds a {type(d).__name__}, not a dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch (no data/labels)")
    data = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    if len(data) != len(labels):
        raise ValueError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data, [int(lab) for lab in labels]


def cifar10_pickle(
    root: str | Path, split: str = "test", *, n: int | None = None, seed: int | None = None
) -> Dataset:
    """Read ``root`` = ``cifar-10-batches-py/`` (or its parent); split ``train`` or ``test``."""
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir():
        root = root / "cifar-10-batches-py"
    names = {"test": ["test_batch"], "train": [f"data_batch_{i}" for i in range(1, 6)]}
    if split not in names:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    parts = [_read_batch(root / name) for name in names[split]]
    data = np.concatenate([p[0] for p in parts])
    labels = [lab for p in parts for lab in p[1]]
    order = select(len(labels), n, seed)
    images = torch.from_numpy(data[order]).float().div_(255)
    y = torch.tensor([labels[i] for i in order], dtype=torch.int64)
    return Dataset(images, y, [f"{split}/{i}" for i in order], list(CIFAR10_CLASSES))


def cifar10(
    root: str | Path, split: str = "test", *, n: int | None = None, seed: int | None = None
) -> Dataset:
    """CIFAR-10 from either layout: ``cifar-10-batches-py`` or ``<root>/<split>/<class>/*.jpg``.

    Folder labels follow CIFAR-10's class order (airplane=0 ... truck=9).
    """
    root = Path(root)
    if (root / "cifar-10-batches-py").is_dir() or (root / "test_batch").is_file():
        return cifar10_pickle(root, split, n=n, seed=seed)
    folder = root / split if (root / split).is_dir() else root
    missing = [c for c in CIFAR10_CLASSES if not (folder / c).is_dir()]
    if missing:
        raise FileNotFoundError(f"class folder missing: {folder / missing[0]}")
    ds = class_folder(folder, classes=CIFAR10_CLASSES, n=n, seed=seed)
    if ds.images.shape[-2:] != (32, 32):
        raise ValueError(f"CIFAR-10 images must be 32x32, got {tuple(ds.images.shape[-2:])}")
    return ds
