"""The in-memory data set every loader returns, and seeded selection."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..base.seeding import MAX_SEED


@dataclass
class Dataset:
    """Images (N, 3, H, W) float32 in [0, 1] (or uint8 when asked), labels (N,) int64.

    ``ids`` name each image (a path relative to the data root); ``classes`` the label names;
    ``skipped`` lists files that could not be read.
    """

    images: torch.Tensor
    labels: torch.Tensor
    ids: list[str]
    classes: list[str]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | list[int] | list[bool]) -> Dataset:
        """The items at ``index`` (integer positions, or a boolean mask of length N)."""
        idx = torch.as_tensor(index)
        if idx.dtype == torch.bool:  # a mask: casting it to long would index 0/1
            if idx.shape != (len(self),):
                raise ValueError(f"mask has shape {tuple(idx.shape)}, expected ({len(self)},)")
            idx = idx.nonzero().flatten()
        idx = idx.long()
        return Dataset(
            self.images[idx],
            self.labels[idx],
            [self.ids[i] for i in idx.tolist()],
            self.classes,
            self.skipped,
        )


def select(total: int, n: int | None, seed: int | None) -> list[int]:
    """Indices of the first ``n`` of ``total`` items, or (with a seed) a random subset of ``n``
    kept in original order. A local generator is used: the global RNG is never touched."""
    if n is None or n >= total:
        return list(range(total))
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if seed is None:
        return list(range(n))
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to {MAX_SEED}, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(total, generator=g)[:n].tolist())
