"""Regions of equal per-image area from different sources: the controls that ask whether the
FCR (the Grad-CAM region) is a better place to perturb than other regions of its size.

An area is a pixel count per image, that of the FCR at a threshold t (#{Grad-CAM >= t}). A
source ranks the pixels of each image; its region of area k is the k highest-ranked pixels, so
every source covers exactly the same number of pixels of each image, and the ``"fcr"`` source
at the area of t *is* the FCR mask at t. Ties at the cut (the zeros of a ReLU map, the flat
patches of a coarse map upsampled) are broken at random, per image, never by position.

Sources (``SOURCES``):

- ``fcr``: the image's own Grad-CAM of its class; ``lowest-cam``: its lowest Grad-CAM pixels;
- ``shuffled-fcr``: the Grad-CAM of another image (image i takes image i + 1's map, the last
  the first's; ``shuffle_partners``): the same shapes and positions on the wrong
  image. The pairing depends on the set of images, so change the set and it changes;
- ``centred-disc``: the pixels nearest the image centre; ``random-disc``: the pixels nearest a
  uniformly drawn point (a disc, clipped by the border near it); ``random-pixels``: uniform;
- ``gradcam++``, ``xgradcam``, ``layercam``: the other CAM methods of
  ``fcrattack.cam.gradcam``; ``smoothgrad``: ``fcrattack.regions.smoothgrad``.

Random sources draw from per-image generators seeded from (seed, image id).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..base.seeding import image_seeds, per_image_rand
from ..base.validation import check_images, check_labels
from ..cam import gradcam
from .saliency import smoothgrad

SOURCES = (
    "fcr",
    "lowest-cam",
    "shuffled-fcr",
    "centred-disc",
    "random-disc",
    "random-pixels",
    "gradcam++",
    "xgradcam",
    "layercam",
    "smoothgrad",
)
_CAMS = {"fcr": "gradcam", "gradcam++": "gradcam++", "xgradcam": "xgradcam", "layercam": "layercam"}


def top_area_mask(
    ranking: torch.Tensor, area: torch.Tensor, tiebreak: torch.Tensor | None = None
) -> torch.Tensor:
    """Mask (N, 1, H, W) float of the ``area[i]`` highest pixels of ``ranking[i]``.

    Args:
        ranking: (N, H, W) float; higher is chosen first.
        area: (N,) integer pixel counts in [0, H*W].
        tiebreak: (N, H, W) float keys that order pixels of equal rank (higher first), e.g.
            uniform noise; None: the lower row-major index first.
    """
    if ranking.dim() != 3:
        raise ValueError(f"ranking must have shape (N, H, W), got {tuple(ranking.shape)}")
    n, h, w = ranking.shape
    if area.shape != (n,) or area.is_floating_point():
        raise ValueError(f"area must be an integer tensor of shape ({n},)")
    if n and not bool(((area >= 0) & (area <= h * w)).all()):
        raise ValueError(f"area must lie in [0, {h * w}] pixels")
    flat = ranking.flatten(1)
    if tiebreak is None:
        order = torch.sort(flat, dim=1, descending=True, stable=True).indices
    else:
        if tiebreak.shape != ranking.shape:
            raise ValueError(f"tiebreak must have the shape of ranking, {tuple(ranking.shape)}")
        first = torch.sort(tiebreak.flatten(1), dim=1, descending=True).indices
        then = torch.sort(flat.gather(1, first), dim=1, descending=True, stable=True).indices
        order = first.gather(1, then)
    positions = torch.arange(h * w, device=order.device).expand(n, -1)
    rank = torch.empty_like(order).scatter_(1, order, positions)
    return (rank < area.to(rank.device)[:, None]).to(ranking.dtype).view(n, 1, h, w)


def shuffle_partners(n: int) -> list[int]:
    """For each of n images, the index of the image whose Grad-CAM ``shuffled-fcr`` gives it:
    the next one, the last taking the first's (a derangement for n > 1)."""
    return [(i + 1) % n for i in range(n)]


def _nearest(centres: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Ranking (N, H, W): minus the distance of each pixel to centres (N, 2) (row, column)."""
    rows = torch.arange(h, dtype=torch.float32, device=centres.device)[None, :, None]
    cols = torch.arange(w, dtype=torch.float32, device=centres.device)[None, None, :]
    return -((rows - centres[:, :1, None]) ** 2 + (cols - centres[:, 1:, None]) ** 2)


class EqualAreaRegions:
    """The rankings of every source for a set of images, and their regions at FCR areas.

    Maps are computed once, in batches moved to ``device``, and kept on the CPU.

    Args:
        model: the classifier whose Grad-CAM defines the FCR (and the CAM sources).
        x: the images (N, C, H, W) in [0, 1].
        y: their classes (N,), whose evidence the maps show (the paper: the true class).
        ids: one id per image: seeds of the random sources, of SmoothGrad and of the random
            tie-breaking (default: hashes of the images' contents).
        seed: the seed combined with each id.
        batch_size: images per forward/backward pass when computing maps.
        layer: the CAM layer (None: as ``fcrattack.cam.gradcam`` chooses).
        device: where the maps are computed (None: the images' device).
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        ids: Sequence[int | str] | None = None,
        seed: int = 0,
        batch_size: int = 100,
        layer: str | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        check_images(x)
        check_labels(y, x.shape[0])
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if ids is not None and len(ids) != len(x):
            raise ValueError(f"ids has {len(ids)} entries for {len(x)} images")
        self.model, self.x, self.y, self.layer = model, x, y, layer
        self.device = torch.device(device) if device is not None else x.device
        self.ids = list(ids) if ids is not None else None
        self.seed, self.batch_size = seed, batch_size
        self._maps: dict[str, torch.Tensor] = {}
        self._tiebreak: torch.Tensor | None = None

    def _generators(self, offset: int) -> list[torch.Generator]:
        """One generator per image, seeded from (seed + offset, id)."""
        seeds = image_seeds(self.x, self.seed + offset, self.ids)
        return [torch.Generator().manual_seed(s) for s in seeds]

    def _batched(self, source: str) -> torch.Tensor:
        parts = []
        for i in range(0, len(self.x), self.batch_size):
            x = self.x[i : i + self.batch_size].to(self.device)
            y = self.y[i : i + self.batch_size].to(self.device)
            ids = None if self.ids is None else self.ids[i : i + self.batch_size]
            if source == "smoothgrad":
                parts.append(smoothgrad(self.model, x, y, seed=self.seed, ids=ids))
            else:
                parts.append(gradcam(self.model, x, y, layer=self.layer, method=_CAMS[source]))
        return torch.cat([p.cpu() for p in parts])

    def map(self, source: str) -> torch.Tensor:
        """The ranking (N, H, W) of ``source`` (higher = chosen first)."""
        if source not in SOURCES:
            raise ValueError(f"unknown region source {source!r}; choose one of {list(SOURCES)}")
        if source not in self._maps:
            n, _, h, w = self.x.shape
            if source in ("fcr", "smoothgrad") or source in _CAMS:
                ranking = self._batched(source)
            elif source == "lowest-cam":
                ranking = -self.map("fcr")
            elif source == "shuffled-fcr":
                ranking = self.map("fcr")[shuffle_partners(n)]
            elif source == "centred-disc":
                ranking = _nearest(torch.tensor([[(h - 1) / 2, (w - 1) / 2]]).expand(n, 2), h, w)
            else:
                gens = self._generators(1)  # not SmoothGrad's (offset 0) nor the tie-breaks'
                if source == "random-pixels":
                    ranking = per_image_rand((h, w), gens, torch.device("cpu"))
                else:
                    point = per_image_rand((2,), gens, torch.device("cpu"))
                    ranking = _nearest(point * torch.tensor([h - 1, w - 1]), h, w)
            self._maps[source] = ranking
        return self._maps[source]

    def area(self, t: float) -> torch.Tensor:
        """Pixel counts (N,) of the FCR at threshold ``t`` in [0, 1]; an image whose Grad-CAM
        is all zero counts the whole image (as ``fcrattack.cam.fcr_mask`` does)."""
        if not 0 <= t <= 1:
            raise ValueError(f"threshold t must lie in [0, 1], got {t}")
        cam = self.map("fcr")
        count = (cam >= t).flatten(1).sum(1)
        return torch.where(count > 0, count, cam[0].numel())

    def mask(self, source: str, t: float) -> torch.Tensor:
        """Mask (N, 1, H, W) float of ``source`` with the area of the FCR at threshold ``t``
        (ties at the cut broken at random, seeded per image)."""
        if self._tiebreak is None:
            h, w = self.x.shape[2:]
            self._tiebreak = per_image_rand((h, w), self._generators(2), torch.device("cpu"))
        return top_area_mask(self.map(source), self.area(t), self._tiebreak)
