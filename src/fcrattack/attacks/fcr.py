"""The FCR attack: "An Adversarial Attack via Feature Contributive Regions" (ICLR 2021
submission), Algorithm 1, batched.

    mask  = Grad-CAM(x, y) >= t
    delta = uniform(-init_scale, init_scale) * mask
    repeat steps times:
        x'    = clip(x + delta, 0, 1)
        1/F   = 1 / (beta / ||delta||_2 + J_T(f(x'), y))     (per image)
        delta = (delta - lr * grad_delta(1/F)) * mask
    return clip(x + delta, 0, 1)

Paper defaults: CIFAR-10 t=0.2, T=0.03, lr=10, steps=20, beta=1; ImageNet t=0.2, T=0.05,
lr=20, steps=20, beta=1 (``FCR.paper(model, "cifar10" | "imagenet")``).

Open points of the paper, as options: ``jt`` (the J_T reading, see
:func:`~fcrattack.attacks.losses.inverse_temperature`), ``init_scale`` (initial delta),
``select`` ("last": the algorithm's last iterate; "best": per image the smallest-L2
successful iterate), ``scale`` (the units delta, its norm and the step live in: 1 for [0, 1]
pixels, 255 for [0, 255], or one factor per channel, e.g. 1/std for the model's normalised
input space; the image is always clipped to [0, 1] pixels), ``targeted``. On [0, 1] images the
literal algorithm is numerically degenerate (docs/reproduction.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..metrics import attack_success
from .base import Attack, BatchContext, per_image_rand
from .losses import JT_READINGS, inverse_temperature
from .region import RegionMixin

PRESETS = {
    "cifar10": {"t": 0.2, "T": 0.03, "lr": 10.0, "steps": 20, "beta": 1.0},
    "imagenet": {"t": 0.2, "T": 0.05, "lr": 20.0, "steps": 20, "beta": 1.0},
}


class FCR(RegionMixin, Attack):
    """FCR attack. x (N, 3, H, W) in [0, 1] -> x_adv, changed only inside the FCR mask."""

    name = "fcr"

    def __init__(self, model: nn.Module, *, t: float = 0.2, T: float = 0.03, lr: float = 10.0,
                 steps: int = 20, beta: float = 1.0, jt: str = "literal",
                 init_scale: float = 1e-3, select: str = "last",
                 scale: float | Sequence[float] = 1.0,
                 layer: str | None = None, cam_class: str = "true", empty_mask: str = "full",
                 targeted: bool = False, seed: int = 0, batch_size: int | None = None) -> None:
        super().__init__(model, targeted=targeted, seed=seed, batch_size=batch_size)
        self._init_region(t, layer, cam_class, empty_mask)
        if jt not in JT_READINGS:
            raise ValueError(f"jt must be one of {JT_READINGS}, got {jt!r}")
        if select not in ("last", "best"):
            raise ValueError(f"select must be 'last' or 'best', got {select!r}")
        scales = list(scale) if isinstance(scale, Sequence) else [scale]
        for key, val in {"T": T, "lr": lr, "beta": beta, "init_scale": init_scale,
                         "scale": min(scales)}.items():
            if not val > 0:
                raise ValueError(f"{key} must be positive, got {val}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        self.T, self.lr, self.steps, self.beta, self.jt = T, lr, steps, beta, jt
        self.init_scale, self.select = init_scale, select
        self.scale = torch.tensor(scales, dtype=torch.float32).view(1, -1, 1, 1)

    @classmethod
    def paper(cls, model: nn.Module, dataset: str = "cifar10", **overrides) -> FCR:
        """The paper's hyper-parameters for ``dataset`` ("cifar10" or "imagenet")."""
        if dataset not in PRESETS:
            raise ValueError(f"no paper preset for {dataset!r}; choose one of {sorted(PRESETS)}")
        return cls(model, **{**PRESETS[dataset], **overrides})

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        mask = ctx.mask
        scale = self.scale.to(x.device)
        u = per_image_rand(x.shape[1:], ctx.generators, x.device)
        delta = (2 * u - 1) * self.init_scale * mask
        best = x.clone()
        best_l2 = torch.full((x.shape[0],), float("inf"), device=x.device)
        for _ in range(self.steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                x_cur = (x + delta / scale).clamp(0, 1)
                logits = self.model(x_cur)
                norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
                jt = inverse_temperature(logits, y, ctx.target, self.T, self.jt)
                inv_f = 1 / (self.beta / norm + jt)
                (grad,) = torch.autograd.grad(inv_f.sum(), delta)
            if self.select == "best":
                best, best_l2 = self._keep_best(x, x_cur.detach(), logits.detach(), y, ctx,
                                                best, best_l2)
            delta = (delta.detach() - self.lr * grad) * mask
        x_last = (x + delta / scale).clamp(0, 1)
        if self.select == "last":
            return x_last
        with torch.no_grad():
            logits = self.model(x_last)
        best, best_l2 = self._keep_best(x, x_last, logits, y, ctx, best, best_l2)
        found = torch.isfinite(best_l2)[:, None, None, None]
        return torch.where(found, best, x_last)

    @staticmethod
    def _keep_best(x, x_cur, logits, y, ctx, best, best_l2):
        ok = attack_success(logits.argmax(1), y, ctx.target)
        l2 = (x_cur - x).flatten(1).norm(dim=1)
        better = ok & (l2 < best_l2)
        return (torch.where(better[:, None, None, None], x_cur, best),
                torch.where(better, l2, best_l2))
