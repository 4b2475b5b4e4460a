"""What the region attacks (FCR, masked FGSM, region DDN) share: the feature contributive
region's options and its computation on each batch (Grad-CAM of the chosen class >= t)."""

from __future__ import annotations

import torch
from torch import nn

from ..cam import Region, fcr_region_map
from ..options import Choice, Float, Option, Optional, Text

CAM_CLASSES = ("true", "pred", "target")


class RegionMixin:
    """The FCR region options and a ``default_mask`` that computes the region (and keeps its
    Grad-CAM map for the result) when the caller passes no mask."""

    model: nn.Module

    t = Option(
        Float(0.0, 1.0), 0.2, "FCR threshold on the normalised Grad-CAM map (0: the whole image)"
    )
    layer = Option(
        Optional(Text()),
        None,
        "Grad-CAM layer: a module name, 'name@k' for the k-th call of a module "
        "called several times (None: automatic, see fcrattack.cam)",
    )
    cam_class = Option(
        Choice(*CAM_CLASSES), "true", "class whose Grad-CAM evidence defines the region"
    )
    empty_mask = Option(
        Choice("full", "keep"),
        "full",
        "an all-zero Grad-CAM map: attack the whole image, or keep it empty",
    )

    def default_mask(self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> Region:
        """The FCR of x (B, C, H, W) for labels y (B,) and optional targets: mask
        (B, 1, H, W) and the Grad-CAM map (B, H, W) it was thresholded from."""
        if self.cam_class == "target" and target is None:
            raise ValueError("cam_class='target' needs a targeted attack with target=")
        cls = {"true": y, "pred": None, "target": target}[self.cam_class]
        return fcr_region_map(self.model, x, cls, t=self.t, layer=self.layer, empty=self.empty_mask)
