"""The commit step of a data-set command: each batch's PNGs are written in background
threads and its records committed once they are on disk (``Committer``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

from ..viz.images import cam_overlay, mask_image, save_png


class Committer:
    """Writes each batch's PNGs in ``threads`` threads and passes its records to ``commit``
    once they are on disk (one batch behind, so the model never waits for PNG encoding)."""

    def __init__(self, commit: Callable[[list[dict[str, Any]]], Any], threads: int = 2) -> None:
        self.commit = commit
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="fcrattack-write")
        self.pending: deque[tuple[list[Future[Any]], list[dict[str, Any]]]] = deque()

    def submit(self, jobs: list[Callable[[], Any]], rows: list[dict[str, Any]]) -> None:
        self.pending.append(([self.pool.submit(job) for job in jobs], rows))
        while len(self.pending) > 1:
            self._commit()

    def _commit(self) -> None:
        futures, rows = self.pending.popleft()
        for future in futures:
            future.result()
        self.commit(rows)

    def __enter__(self) -> Committer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:  # batches whose PNGs are written are committed, also when the loop failed
            while self.pending:
                self._commit()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)


def write_region(
    x: torch.Tensor,
    cam: torch.Tensor,
    mask: torch.Tensor,
    cam_png: Path,
    mask_png: Path,
    scale: int,
) -> None:
    """The Grad-CAM overlay of x (3, H, W) with cam (H, W), and mask (1, H, W), as PNGs."""
    save_png(cam_overlay(x, cam), cam_png, scale)
    save_png(mask_image(mask), mask_png, scale)
