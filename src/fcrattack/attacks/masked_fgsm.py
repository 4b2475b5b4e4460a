"""Masked FGSM, Appendix A (Algorithm 2) of the FCR paper ("An Adversarial Attack via Feature
Contributive Regions", ICLR 2021 submission), batched:

    x' = clip(x + eps1 * sign(g) * mask + eps2 * sign(g) * (1 - mask), 0, 1),  g = grad_x J(x, y)

eps1 on the feature contributive regions (Grad-CAM >= t), eps2 on the rest. (The paper's
line 4 multiplies both terms by the mask; its Table 3 makes clear eps2 is meant for the
non-FCRs.) Targeted mode descends the cross-entropy of the target instead. With ``quantize``
the step is rounded to the 8-bit grid without leaving either budget (``fcrattack.attacks.grid``).
"""

from __future__ import annotations

import torch

from ..models.gradient import input_grad
from ..options import Float, Option
from .base import Attack, BatchContext
from .grid import GridMixin
from .losses import cross_entropy
from .region import RegionMixin

_PAPER = {"t": 0.2, "eps1": 0.03, "eps2": 0.0}  # Table 3's first cell


class MaskedFGSM(GridMixin, RegionMixin, Attack):
    """Two-budget FGSM: ``eps1`` inside the FCR mask, ``eps2`` outside (both Linf, [0, 1])."""

    name = "masked-fgsm"
    PAPER = {"cifar10": _PAPER, "imagenet": _PAPER}
    restrict_to_mask = False

    eps1 = Option(Float(min=0.0), 0.03, "Linf step on the FCRs ([0, 1] pixels)")
    eps2 = Option(Float(min=0.0), 0.0, "Linf step outside the FCRs ([0, 1] pixels)")

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        _, grad = input_grad(self.model, x, lambda logits: cross_entropy(logits, y, ctx.target))
        eps = self.eps1 * ctx.region + self.eps2 * (1 - ctx.region)
        return self.on_grid(x, (x + eps * grad.sign()).clamp(0, 1))
