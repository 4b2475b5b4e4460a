"""FGSM: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples" (ICLR
2015), batched:

    x' = clip(x + eps * sign(grad_x J(x, y)), 0, 1)

(``norm="l2"``: the fast gradient method, x + eps * g / ||g||_2.) One gradient step of the
``GradientAttack`` template. Defaults: eps = 8/255 (on [0, 1]
images), norm "linf"; eps may be a float >= 0 or a per-image tensor (N,). Targeted mode descends
the target's cross-entropy. Images x (N, C, H, W) in [0, 1]; ``mask`` (N, 1, H, W) of run()
restricts the change.
"""

from __future__ import annotations

import torch

from .gradient import GradientAttack


class FGSM(GradientAttack):
    """Fast gradient sign method: one step of size eps (the paper does not use it: ``paper()``
    gives the defaults)."""

    name = "fgsm"
    steps = 1
    random_start = False

    @property
    def step_size(self) -> float | torch.Tensor:
        """The single step is the whole budget."""
        return self.eps
