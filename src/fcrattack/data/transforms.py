"""Resizing policies applied to each decoded image (PIL -> PIL), for images of mixed sizes."""

from __future__ import annotations

from PIL import Image

from .decode import Transform

#: the policies of ``resize_policy``
POLICIES = ("crop", "stretch", "none")


def resize_center_crop(size: int = 224, resize: int | None = 256) -> Transform:
    """The standard evaluation transform: shorter side to ``resize`` (bilinear; None: to
    ``size``), then the centre ``size`` x ``size`` crop."""
    resize = size if resize is None else resize

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


def stretch(size: int) -> Transform:
    """Resize to ``size`` x ``size`` (bilinear), whatever the aspect ratio: nothing is cut off,
    shapes are distorted."""
    return lambda img: (
        img if img.size == (size, size) else img.resize((size, size), Image.Resampling.BILINEAR)
    )


def resize_policy(policy: str, size: int | None, resize: int | None = None) -> Transform | None:
    """The transform of ``policy``: "crop" (``resize_center_crop``), "stretch"
    (``stretch``) or "none" (no resizing: images must share a size). ``size`` is the side
    in pixels (None: no resizing whatever the policy)."""
    if policy not in POLICIES:
        raise ValueError(f"resize policy must be one of {POLICIES}, got {policy!r}")
    if size is None or policy == "none":
        return None
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    return resize_center_crop(size, resize) if policy == "crop" else stretch(size)
