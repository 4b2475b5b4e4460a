"""What the region-based attacks (FCR, masked FGSM, fcr-ddn) share: the Grad-CAM class choice and
the FCR mask computed on each batch."""

from __future__ import annotations

import torch

from ..cam import fcr_region

CAM_CLASSES = ("true", "pred", "target")


class RegionMixin:
    """Adds the FCR region options ``t``, ``layer``, ``cam_class``, ``empty_mask`` and a
    ``prepare`` that computes the mask (B, 1, H, W) when the caller passes none."""

    model: torch.nn.Module

    def _init_region(self, t: float, layer: str | None, cam_class: str, empty_mask: str) -> None:
        if not 0 <= t <= 1:
            raise ValueError(f"threshold t must lie in [0, 1], got {t}")
        if cam_class not in CAM_CLASSES:
            raise ValueError(f"cam_class must be one of {CAM_CLASSES}, got {cam_class!r}")
        if empty_mask not in ("full", "keep"):
            raise ValueError(f"empty_mask must be 'full' or 'keep', got {empty_mask!r}")
        self.t, self.layer, self.cam_class, self.empty_mask = t, layer, cam_class, empty_mask

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor:
        if self.cam_class == "target" and target is None:
            raise ValueError("cam_class='target' needs a targeted attack with target=")
        cls = {"true": y, "pred": None, "target": target}[self.cam_class]
        return fcr_region(self.model, x, cls, t=self.t, layer=self.layer, empty=self.empty_mask)
