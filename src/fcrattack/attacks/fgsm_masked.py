"""Masked FGSM, the FCR paper's Appendix A (Algorithm 2), batched:

    x' = clip(x + eps1 * sign(g) * mask + eps2 * sign(g) * (1 - mask), 0, 1),  g = grad_x J(x, y)

eps1 on the feature contributive regions (Grad-CAM >= t), eps2 on the rest. (The paper's
line 4 multiplies both terms by the mask; its Table 3 makes clear eps2 is meant for the
non-FCRs.) Targeted mode descends the cross-entropy of the target instead.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Attack, BatchContext, input_grad
from .losses import cross_entropy
from .region import RegionMixin


class MaskedFGSM(RegionMixin, Attack):
    """Two-budget FGSM: ``eps1`` inside the FCR mask, ``eps2`` outside (both Linf, [0, 1])."""

    name = "masked-fgsm"
    restrict_to_mask = False

    def __init__(self, model: nn.Module, *, eps1: float = 0.03, eps2: float = 0.0,
                 t: float = 0.2, layer: str | None = None, cam_class: str = "true",
                 empty_mask: str = "full", targeted: bool = False, seed: int = 0,
                 batch_size: int | None = None) -> None:
        super().__init__(model, targeted=targeted, seed=seed, batch_size=batch_size)
        self._init_region(t, layer, cam_class, empty_mask)
        if eps1 < 0 or eps2 < 0:
            raise ValueError(f"eps1 and eps2 must be >= 0, got {eps1}, {eps2}")
        self.eps1, self.eps2 = eps1, eps2

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        _, grad = input_grad(self.model, x, lambda logits: cross_entropy(logits, y, ctx.target))
        eps = self.eps1 * ctx.mask + self.eps2 * (1 - ctx.mask)
        return (x + eps * grad.sign()).clamp(0, 1)
