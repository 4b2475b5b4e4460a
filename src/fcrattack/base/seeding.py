"""Per-image random streams: one seed per image from (seed, image id), so that results do not
depend on batches, ranks or the global RNG."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

#: the largest seed fcrattack takes (seeds are 0 to 2**32 - 1, as numpy's and most tools')
MAX_SEED = 2**32 - 1


def image_seeds(x: torch.Tensor, seed: int, ids: Sequence[int | str] | None = None) -> list[int]:
    """One 63-bit seed per image from (seed, id); id = content hash of the image by default."""
    if ids is None:
        data = x.detach().to("cpu", torch.float32).contiguous().numpy()
        keys = [hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest() for a in data]
    else:
        keys = [str(i) for i in ids]
    return [
        int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "little")
        >> 1
        for k in keys
    ]


def per_image_rand(
    shape: Sequence[int],
    generators: list[torch.Generator],
    device: torch.device,
    kind: str = "uniform",
) -> torch.Tensor:
    """(N, *shape) random tensor, row i drawn from generators[i] (uniform in [0, 1) or normal).

    Used once per attack for initialisation, never inside iterations.
    """
    draw = torch.rand if kind == "uniform" else torch.randn
    return torch.stack([draw(tuple(shape), generator=g) for g in generators]).to(device)
