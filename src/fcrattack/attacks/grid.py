"""The 8-bit grid: what an attack optimises when its output is saved as an 8-bit image.

An 8-bit PNG stores 256 levels per value, so a minimum-norm attack that stops just past the
decision boundary in float32 often lands back on the clean side once its image is rounded for
saving. With ``quantize=True`` (``GridMixin``) an attack keeps every iterate on that grid
and judges success on it, so the image it returns is the image a PNG stores. Every attack of
fcrattack declares it; the command line (``fcrattack attack``, ``fcrattack demo``) turns it on
for every attack that does (``supports_grid``); in Python the default stays ``False`` (float
results). The L0 attacks (JSMA, One-Pixel) round only the values they change
(``GridMixin.changes_on_grid``), so their count of changed values holds; for a clean image on
the grid (any 8-bit image attacked at its own size) that is again the image a PNG stores.

Rounding (``to_grid``): each value goes to the nearest level, or to the next level towards
the clean value where the nearest would enlarge its change, so a budget (an Linf box or L2
ball around a clean image on the grid) still holds; unchanged values go to the nearest level,
as saving does. Outside the attack's region the clean image is taken as saving will store it
(``GridMixin.attack_input``), so a region attack's judged image equals the saved one also
for resized images that are off the grid.
"""

from __future__ import annotations

from typing import Any

import torch

from ..metrics import quantize_uint8
from ..options import Bool, Option

#: the option's meaning, as ``help()`` and ``fcrattack attacks NAME`` show it
QUANTIZE_DOC = (
    "keep every iterate on the 8-bit grid a PNG stores and judge success there, so a saved "
    "image is the one optimised (default on in the CLI)"
)


def to_grid(x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """x_adv (B, C, H, W) in [0, 1] on the 256 levels of 8 bits (module docstring); ``x``:
    the clean images, whose change must not grow."""
    scaled = x_adv.clamp(0, 1) * 255
    near = scaled.round()
    toward = torch.where(x_adv >= x, scaled.floor(), scaled.ceil())
    change = (x_adv - x).abs()
    grows = ((near / 255 - x).abs() > change) & (change > 0)
    return torch.where(grows, toward, near) / 255


def supports_grid(cls: type[Any]) -> bool:
    """Whether attack class ``cls`` declares the ``quantize`` option."""
    return "quantize" in cls.options()


class GridMixin:
    """The ``quantize`` option and its rounding, for attacks that can optimise on the grid."""

    quantize = Option(Bool(), False, QUANTIZE_DOC)

    def on_grid(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """x_adv on the 8-bit grid with ``quantize`` (``to_grid``), else unchanged."""
        return to_grid(x, x_adv) if self.quantize else x_adv

    def changes_on_grid(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """x_adv with the values it changes from x on the 8-bit grid with ``quantize``
        (``to_grid``), the others as they are: for attacks that count changed values (L0),
        whose count rounding must not grow."""
        if not self.quantize:
            return x_adv
        return torch.where(x_adv != x, to_grid(x, x_adv), x_adv)

    def straight_through(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        """``on_grid`` in the forward pass, the identity in the backward pass (for
        attacks whose iterate is differentiated, e.g. C&W's w and FCR's delta)."""
        if not self.quantize:
            return x_adv
        return x_adv + (to_grid(x, x_adv) - x_adv).detach()

    def attack_input(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The clean images as the attack should treat them: with ``quantize``, outside
        ``mask`` rounded as saving will store them (x is returned unchanged without a mask,
        where every value may change)."""
        if not self.quantize or mask is None:
            return x
        return torch.where(mask > 0, x, quantize_uint8(x))
