"""Image-folder readers into memory: ``<root>/<class>/*`` class folders and flat folders.

Both return float32 images in [0, 1] (or uint8) of shape (N, 3, H, W) and int64 labels (N,),
through the lazy ``ImageList`` (which the streaming reader reads
batch by batch instead). Corrupt or unreadable files are skipped with a warning and listed in
``Dataset.skipped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .dataset import Dataset
from .decode import Transform
from .listing import list_class_folders, list_flat_folder


def class_folder(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    wnids: Sequence[str] | None = None,
    n: int | None = None,
    seed: int | None = None,
    transform: Transform | None = None,
    uint8: bool = False,
) -> Dataset:
    """Read ``root/<class>/*``; each folder is matched to ``classes`` (names, ``wnids`` or
    indices, see ``match_classes``), or labelled by sorted folder
    order when ``classes`` is None. ``n``/``seed`` select the first n images (seed None) or a
    seeded random subset of n (in the original order)."""
    listing = list_class_folders(root, classes=classes, wnids=wnids, transform=transform)
    return listing.select(n, seed).read(uint8=uint8)


def image_folder(
    root: str | Path,
    *,
    labels: str | Path | None = "pred",
    classes: Sequence[str] | None = None,
    n: int | None = None,
    seed: int | None = None,
    transform: Transform | None = None,
) -> Dataset:
    """A flat folder of the user's own images, labelled by ``labels``: "pred" (label -1: the
    model's prediction is attacked) or a CSV/JSON label file of file -> class index or name
    (names matched to ``classes``)."""
    listing = list_flat_folder(root, labels=labels, classes=classes, transform=transform)
    return listing.select(n, seed).read()
