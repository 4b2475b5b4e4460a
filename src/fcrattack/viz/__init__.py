"""Output primitives with no knowledge of attacks or experiments: PNG images and overlays
(``images``), matplotlib figures (``figures``) and the document model every page is written
with (``document``)."""

from .images import cam_overlay, display_factor, mask_image, perturbation_image, save_png, to_uint8

__all__ = [
    "cam_overlay",
    "display_factor",
    "mask_image",
    "perturbation_image",
    "save_png",
    "to_uint8",
]
