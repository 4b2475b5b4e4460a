"""Image-folder readers: ``<root>/<class>/*.<ext>`` class folders and plain folders of images.

Everything returns float32 images in [0, 1] of shape (N, 3, H, W) and int64 labels (N,).
Corrupt or unreadable files are skipped with a warning and listed in ``Dataset.skipped``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .dataset import Dataset, select

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")

Transform = Callable[[Image.Image], Image.Image]


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _read(path: Path, transform: Transform | None) -> np.ndarray | None:
    try:
        with Image.open(path) as opened:
            img = opened.convert("RGB")
            if transform is not None:
                img = transform(img)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        log.warning("skipping unreadable image %s: %s", path, exc)
        return None


def read_images(
    paths: Sequence[Path], transform: Transform | None = None, workers: int = 8
) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode ``paths`` in parallel into a uint8 tensor (N, 3, H, W).

    Returns the tensor, the indices of ``paths`` that were read, and the skipped paths.
    All images must end up the same size (use ``transform`` to resize/crop).
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda p: _read(p, transform), paths))
    kept = [i for i, a in enumerate(arrays) if a is not None]
    skipped = [str(paths[i]) for i, a in enumerate(arrays) if a is None]
    good = [a for a in arrays if a is not None]
    if not good:
        raise ValueError(f"none of the {len(paths)} image files could be read")
    shapes = {a.shape for a in good}
    if len(shapes) > 1:
        raise ValueError(
            f"images have different sizes {sorted(shapes)[:4]}...; pass a resize "
            "(e.g. size=224) so that they can be batched"
        )
    stacked = np.stack(good)  # (N, H, W, 3)
    return torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous(), kept, skipped


def class_folder(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    n: int | None = None,
    seed: int | None = None,
    transform: Transform | None = None,
    uint8: bool = False,
) -> Dataset:
    """Read ``root/<class>/*`` with label = index of the class folder in sorted order.

    ``classes`` fixes the label order instead (e.g. CIFAR-10's). ``n``/``seed`` select the
    first n images (seed None) or a seeded random subset of n (in the original order).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    names = (
        list(classes)
        if classes is not None
        else sorted(p.name for p in root.iterdir() if p.is_dir())
    )
    if not names:
        raise ValueError(f"no class folders in {root}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"class folder missing: {folder}")
        files = _list_images(folder)
        paths += files
        labels += [label] * len(files)
    if not paths:
        raise ValueError(f"no image files under {root}")
    order = select(len(paths), n, seed)
    paths = [paths[i] for i in order]
    images, kept, skipped = read_images(paths, transform)
    ids = [str(paths[i].relative_to(root)) for i in kept]
    y = torch.tensor([labels[order[i]] for i in kept], dtype=torch.int64)
    return Dataset(images if uint8 else images.float().div_(255), y, ids, names, skipped)


def image_folder(
    root: str | Path,
    *,
    label: int | None = None,
    n: int | None = None,
    seed: int | None = None,
    transform: Transform | None = None,
) -> Dataset:
    """A flat folder of the user's own images; labels are ``label`` or -1 (unknown)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    paths = _list_images(root)
    if not paths:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}")
    order = select(len(paths), n, seed)
    paths = [paths[i] for i in order]
    images, kept, skipped = read_images(paths, transform)
    y = torch.full((len(kept),), -1 if label is None else label, dtype=torch.int64)
    return Dataset(images.float().div_(255), y, [paths[i].name for i in kept], [], skipped)
