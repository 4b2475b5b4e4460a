"""Reading an ``ImageList`` in batches while the model runs:
``ImageStream``, a bounded, prefetching reader.

Files are decoded in a pool of worker threads (PIL releases the GIL while it decodes, resizes
and crops), and each batch is assembled (stacked, converted to float [0, 1]) by one more
thread, so the consumer only waits when the reader is slower than the model. At most
``prefetch`` batches are decoded ahead of the one the consumer holds, so memory is bounded by
``prefetch + 1`` batches whatever the number of files. Batches come in the list's order, each
an in-memory ``Dataset`` whose ``skipped`` lists that batch's
unreadable files (skipped with a warning, as ``fcrattack.data.read_images`` does).

Use it as a context manager (or call ``ImageStream.close``): stopping early cancels the
batches not yet started and joins every thread::

    with ImageStream(images, batch_size=64) as batches:
        for batch in batches:
            ...
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np
import torch

from .dataset import Dataset
from .decode import decode, stack
from .listing import ImageList

log = logging.getLogger(__name__)


class ImageStream:
    """Batches of ``images`` (an ``ImageList``), decoded ahead in worker threads.

    Args:
        images: the files, labels, ids and transform to read (all decoded images must have
            one size: give the list a transform such as
            ``fcrattack.data.resize_center_crop`` for photos of mixed sizes).
        batch_size: images per batch (>= 1; the last batch may be smaller, and a batch with
            unreadable files holds fewer images).
        prefetch: batches decoded ahead of the one the consumer holds (>= 1); memory is
            bounded by ``prefetch + 1`` batches.
        workers: decoding threads (>= 1).

    Iterating yields ``Dataset`` batches: images (B, 3, H, W) float32 in [0, 1], labels
    (B,) int64 (``PREDICTED`` where unknown), the batch's ids,
    the list's classes and the batch's unreadable files in ``skipped`` (B may be 0 when every
    file of a batch is unreadable). Images of a size different from the first image's are an
    error naming both files and the remedy (as in ``fcrattack.data.decode.stack``).
    """

    def __init__(
        self, images: ImageList, batch_size: int, *, prefetch: int = 2, workers: int = 4
    ) -> None:
        for name, value in (
            ("batch_size", batch_size),
            ("prefetch", prefetch),
            ("workers", workers),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        self.images = images
        self.batch_size = batch_size
        self.prefetch = prefetch
        self._decoders = ThreadPoolExecutor(workers, thread_name_prefix="fcrattack-decode")
        self._assembler = ThreadPoolExecutor(1, thread_name_prefix="fcrattack-assemble")
        self._starts = iter(range(0, len(images), batch_size))
        self._pending: deque[Future[Dataset]] = deque()
        self._first: tuple[np.ndarray, Path] | None = None  # the size every image must have
        self._closed = False

    def __len__(self) -> int:
        """The number of batches."""
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[Dataset]:
        return self

    def __next__(self) -> Dataset:
        if self._closed:
            raise StopIteration
        self._fill()
        if not self._pending:
            self.close()
            raise StopIteration
        try:
            batch = self._pending.popleft().result()
        except BaseException:
            self.close()
            raise
        self._fill()  # the next batches decode while the consumer works on this one
        return batch

    def _fill(self) -> None:
        """Start batches until ``prefetch`` are in flight (or none is left)."""
        while len(self._pending) < self.prefetch and self._submit():
            pass

    def _submit(self) -> bool:
        """Start decoding the next batch; False when there is none."""
        start = next(self._starts, None)
        if start is None:
            return False
        part = self.images.subset(range(start, min(start + self.batch_size, len(self.images))))
        transform = part.transform
        files = [self._decoders.submit(decode, p, transform) for p in part.paths]
        self._pending.append(self._assembler.submit(self._assemble, part, files))
        return True

    def _assemble(self, part: ImageList, files: list[Future[np.ndarray | None]]) -> Dataset:
        """Wait for a batch's files, stack them and convert to float [0, 1] (assembler thread)."""
        arrays = [f.result() for f in files]
        kept = [(a, p) for a, p in zip(arrays, part.paths) if a is not None]
        if kept and self._first is None:
            self._first = kept[0]
        if self._first is not None:
            ref, ref_path = self._first
            for a, p in kept:
                if a.shape != ref.shape:  # the error decode.stack gives for mixed sizes
                    stack([ref, a], [ref_path, p])
        h, w = self._first[0].shape[:2] if self._first is not None else (0, 0)
        images = (
            stack([a for a, _ in kept], [p for _, p in kept])
            if kept
            else torch.empty(0, 3, h, w, dtype=torch.uint8)
        )
        index = [i for i, a in enumerate(arrays) if a is not None]
        return Dataset(
            images.float().div_(255),
            torch.tensor([part.labels[i] for i in index], dtype=torch.int64),
            [part.ids[i] for i in index],
            list(part.classes),
            [str(p) for a, p in zip(arrays, part.paths) if a is None],
        )

    def close(self) -> None:
        """Cancel the batches not started, wait for the running decodes and join every thread
        (idempotent; called on exhaustion, on error and by ``with``)."""
        if self._closed:
            return
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._decoders.shutdown(wait=True, cancel_futures=True)
        self._assembler.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()

    def __enter__(self) -> ImageStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def batches(
    data: Dataset | ImageList,
    batch_size: int,
    *,
    index: Sequence[int] | None = None,
    prefetch: int = 2,
    workers: int = 4,
) -> Iterator[Iterator[Dataset]]:
    """Batches of ``data`` (optionally only the items at positions ``index``, in that order),
    as a context manager: an ``ImageStream`` for an ``ImageList`` (``prefetch`` and
    ``workers`` as there), consecutive slices for an in-memory ``Dataset``."""
    if isinstance(data, ImageList):
        part = data if index is None else data.subset(index)
        with ImageStream(part, batch_size, prefetch=prefetch, workers=workers) as stream:
            yield stream
        return
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    positions = list(range(len(data))) if index is None else list(index)
    yield (data.subset(positions[i : i + batch_size]) for i in range(0, len(positions), batch_size))
