"""Class activation maps: which layer to read (``layers``) and the batched maps and the FCR
mask computed from it (``maps``)."""

from .layers import SCRIPTED, check_hookable, find_layer, info_layer
from .maps import CAM_METHODS, Region, fcr_mask, fcr_region, fcr_region_map, gradcam, normalize_maps

__all__ = [
    "CAM_METHODS",
    "SCRIPTED",
    "Region",
    "check_hookable",
    "fcr_mask",
    "fcr_region",
    "fcr_region_map",
    "find_layer",
    "gradcam",
    "info_layer",
    "normalize_maps",
]
