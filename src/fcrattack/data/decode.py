"""Decoding image files into uint8 tensors, in worker threads; unreadable files are skipped."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")

#: the most pixels an image may have to be decoded (64 megapixels, from the file's header,
#: before decoding): a larger one is skipped as unreadable. Decoding holds several copies of
#: the image while converting, in each reader thread (docs/models-and-data.md: its peak).
MAX_PIXELS = 64_000_000

#: a PIL image -> PIL image step applied after decoding (e.g. resize and centre crop)
Transform = Callable[[Image.Image], Image.Image]


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, upright: the EXIF orientation applied (photos from phones), and 16-bit or float
    grey images scaled to 8 bits (``convert("RGB")`` would clip them to white); a float image
    holding NaN or inf is a ValueError (it is unreadable)."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if not np.isfinite(a).all():  # NaN would compare false and inf scale all to black
            raise ValueError(f"{(~np.isfinite(a)).sum()} of its {a.size} values are NaN or inf")
        top = a.max(initial=0.0)
        if img.mode.startswith("I;16") or top > 255:
            a = a * (255 / 65535)
        elif img.mode == "F" and top <= 1:
            a = a * 255
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    return img.convert("RGB")


def decode(path: Path, transform: Transform | None, *, warn: bool = True) -> np.ndarray | None:
    """One file as an RGB uint8 array (H, W, 3) after ``transform`` (see ``_to_rgb`` for
    orientation and bit depth); None (and a warning, unless ``warn`` is false: a second look
    at a file already warned about) when it cannot be read, or has more than ``MAX_PIXELS``
    pixels (read from its header: it is not decoded)."""
    array, problem = _decoded(path, transform)
    if problem is not None and warn:
        log.warning("skipping %s", problem)
    return array


def _decoded(path: Path, transform: Transform | None) -> tuple[np.ndarray | None, str | None]:
    """``decode``'s array, or None and why."""
    try:
        with Image.open(path) as opened:
            w, h = opened.size
            if w * h > MAX_PIXELS:
                return None, (
                    f"image {path}: {w} x {h} pixels ({w * h / 1e6:.0f} megapixels) is above "
                    f"the {MAX_PIXELS / 1e6:.0f} megapixels fcrattack decodes "
                    "(fcrattack.data.decode.MAX_PIXELS); downscale it first"
                )
            img = _to_rgb(opened)
            if transform is not None:
                img = transform(img)
            return np.asarray(img, dtype=np.uint8), None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"unreadable image {path}: {exc}"


def stack(arrays: Sequence[np.ndarray], paths: Sequence[Path]) -> torch.Tensor:
    """(H, W, 3) uint8 arrays of one size -> a uint8 tensor (N, 3, H, W); different sizes are
    an error that names two of the files and the remedy."""
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape
        other = next(i for i, a in enumerate(arrays) if a.shape != first)
        raise ValueError(
            f"images have different sizes ({paths[0].name}: {first[1]}x{first[0]}, "
            f"{paths[other].name}: {arrays[other].shape[1]}x{arrays[other].shape[0]}); "
            "resize them to one size: --size N on the command line, "
            "transform=fcrattack.data.resize_center_crop(N) in Python"
        )
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def read_images(
    paths: Sequence[Path], transform: Transform | None = None, workers: int = 8
) -> tuple[torch.Tensor, list[int], list[str]]:
    """Decode ``paths`` in ``workers`` threads into a uint8 tensor (N, 3, H, W).

    Returns the tensor, the indices of ``paths`` that were read, and the skipped paths.
    All images must end up the same size (use ``transform`` to resize/crop).
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda p: decode(p, transform), paths))
    kept = [i for i, a in enumerate(arrays) if a is not None]
    skipped = [str(paths[i]) for i, a in enumerate(arrays) if a is None]
    good = [a for a in arrays if a is not None]
    if not good:
        raise ValueError(f"none of the {len(paths)} image files could be read")
    return stack(good, [paths[i] for i in kept]), kept, skipped
