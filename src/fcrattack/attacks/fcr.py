"""The FCR attack: "An Adversarial Attack via Feature Contributive Regions" (ICLR 2021
submission), Algorithm 1, batched.

    mask  = Grad-CAM(x, y) >= t
    delta = uniform(-init_scale, init_scale) * mask
    repeat steps times:
        x'    = clip(x + delta, 0, 1)
        1/F   = 1 / (beta / ||delta||_2 + J_T(f(x'), y))     (per image)
        delta = (delta - lr * grad_delta(1/F)) * mask
    return clip(x + delta, 0, 1)

The paper's hyper-parameters differ per data set: ``FCR.paper(model, "cifar10" | "imagenet")``.

Open points of the paper, as options: ``jt`` (the J_T reading, see
``inverse_temperature``), ``init_scale`` (initial delta),
``select`` ("last": the algorithm's last iterate; "best": per image the smallest-L2
successful iterate), ``scale`` (the units delta, its norm and the step live in: 1 for [0, 1]
pixels, 255 for [0, 255], or one factor per channel, e.g. 1/std for the model's normalised
input space; the image is always clipped to [0, 1] pixels), ``targeted``, ``quantize`` (the
image the model sees is rounded to the 8-bit grid, delta's gradient passing straight
through). On [0, 1] images the literal algorithm is numerically degenerate
(docs/reproduction.md).
"""

from __future__ import annotations

import torch

from ..base.seeding import per_image_rand
from ..options import Choice, Float, Floats, Int, Option
from .base import Attack, BatchContext
from .grid import GridMixin
from .losses import JT_READINGS, inverse_temperature
from .region import RegionMixin
from .result import BestIterate


class FCR(GridMixin, RegionMixin, Attack):
    """FCR attack. x (N, 3, H, W) in [0, 1] -> x_adv, changed only inside the FCR mask."""

    name = "fcr"
    label = "the paper's Algorithm 1 (literal)"
    caveat = (
        "Its perturbations are large: on [0, 1] images the first step of its descent on 1/F "
        "flips the tiny initial delta and scales it to a norm of about lr / beta = 10, where "
        "it stays (docs/reproduction.md); region-ddn is the well-posed region attack."
    )
    PAPER = {
        "cifar10": {"t": 0.2, "T": 0.03, "lr": 10.0, "steps": 20, "beta": 1.0},
        "imagenet": {"t": 0.2, "T": 0.05, "lr": 20.0, "steps": 20, "beta": 1.0},
    }

    T = Option(Float(min=0.0, min_open=True), 0.03, "inverse temperature of J_T")
    lr = Option(Float(min=0.0, min_open=True), 10.0, "learning rate LR of the descent on 1/F")
    steps = Option(Int(min=0), 20, "iterations N")
    beta = Option(Float(min=0.0, min_open=True), 1.0, "weight of P = beta / ||delta||_2")
    jt = Option(Choice(*JT_READINGS), "literal", "reading of the paper's J_T (Eq. 12)")
    init_scale = Option(
        Float(min=0.0, min_open=True),
        1e-3,
        "initial delta uniform in [-init_scale, init_scale] (in scale units)",
    )
    select = Option(
        Choice("last", "best"),
        "last",
        "return the last iterate, or per image the smallest-L2 successful one",
    )
    scale = Option(
        Floats(),
        1.0,
        "units of delta, its norm and the step: 1 ([0, 1] pixels), 255, or one factor per channel",
    )

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        mask = ctx.region
        scale = torch.tensor(self.scale, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        if scale.shape[1] not in (1, x.shape[1]):
            raise ValueError(
                f"option scale has {scale.shape[1]} values for images of {x.shape[1]} channels"
            )
        u = per_image_rand(x.shape[1:], ctx.generators, x.device)
        delta = (2 * u - 1) * self.init_scale * mask
        best = BestIterate(x)
        for _ in range(self.steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                x_cur = self.straight_through(x, (x + delta / scale).clamp(0, 1))
                logits = self.model(x_cur)
                norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
                jt = inverse_temperature(logits, y, ctx.target, self.T, self.jt)
                inv_f = 1 / (self.beta / norm + jt)
                (grad,) = torch.autograd.grad(inv_f.sum(), delta)
            if self.select == "best":
                x_cur = x_cur.detach()
                best.observe(
                    x_cur, (x_cur - x).flatten(1).norm(dim=1), logits.detach(), y, ctx.target
                )
            delta = (delta.detach() - self.lr * grad) * mask
        x_last = self.on_grid(x, (x + delta / scale).clamp(0, 1))
        if self.select == "last":
            return x_last
        # the last iterate replaces the best one where it is smaller and adversarial: run()'s
        # fresh re-check judges it
        x_adv, rows = best.with_last(x_last, (x_last - x).flatten(1).norm(dim=1))
        ctx.fall_back(best.x, rows)
        return x_adv
