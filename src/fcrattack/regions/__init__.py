"""Regions and saliency: regions of equal per-image area from ten sources (``sources``) and
the SmoothGrad input-gradient map (``saliency``). Below the attacks: regions are built from
Grad-CAM maps, saliency maps and per-image random streams, never from an attack."""

from .saliency import smoothgrad
from .sources import SOURCES, EqualAreaRegions, shuffle_partners, top_area_mask

__all__ = ["SOURCES", "EqualAreaRegions", "shuffle_partners", "smoothgrad", "top_area_mask"]
