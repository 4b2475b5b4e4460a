"""Template for iterative gradient attacks (in the style of foolbox v3), batched:

    delta = mask * random_init(x)          (or 0 without ``random_start``)
    repeat steps times:
        g     = d loss(model(transform(x + delta)), y) / d x      (loss to maximise, (B,))
        delta = project(delta + step_size * mask * normalize(mask * g), eps)
        delta = clip(x + delta, 0, 1) - x          (on the 8-bit grid with ``quantize``)
    return x + delta

Hooks a subclass may override: ``loss``, ``random_init``, ``init_state``,
``transform``, ``gradient``, ``normalize``, ``project``. ``norm`` is "linf"
(sign steps, clamp to the eps box) or "l2" (steps along grad / ||grad||_2, projection on the
eps ball), per image. Images are (B, C, H, W) in [0, 1]; eps and step_size are on that scale.

Per-image budgets: ``eps`` (and ``step_size``) may be a float or a tensor (N,) aligned with the
images given to ``run()`` (e.g. ``PGDL2(model, eps=fcr_result.norms["l2"])`` attacks every
image within the L2 that FCR reached on it); batches pick their rows through
``BatchContext.index``.
"""

from __future__ import annotations

import torch

from ..base.seeding import per_image_rand
from ..models.gradient import input_grad
from ..options import Bool, Budget, Choice, Int, Option, Optional
from .base import Attack, BatchContext
from .grid import GridMixin
from .losses import cross_entropy

NORMS = ("linf", "l2")


def batch_budget(value: float | torch.Tensor, x: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
    """The batch's rows of a float or per-image (N,) budget, as (B, 1, 1, 1) on x's device."""
    if isinstance(value, torch.Tensor):
        rows = value[ctx.index]
        if rows.shape[0] != x.shape[0]:
            raise ValueError(
                f"per-image budget has {rows.shape[0]} rows for a batch of {x.shape[0]} images"
            )
        return rows.to(x.device, x.dtype).view(-1, 1, 1, 1)
    return torch.full((x.shape[0], 1, 1, 1), value, device=x.device, dtype=x.dtype)


class GradientAttack(GridMixin, Attack):
    """Projected iterative gradient attack; see the module docstring."""

    name = "gradient"

    eps = Option(
        Budget(), 8 / 255, "budget (Linf or L2 on [0, 1] images), a float or per-image (N,)"
    )
    steps = Option(Int(min=0), 10, "number of gradient steps")
    step_size = Option(
        Optional(Budget()),
        None,
        "step (float or per-image (N,)); None: 2.5 * eps / steps (Madry et al.)",
    )
    random_start = Option(
        Bool(), False, "start at a random point of the eps box (Linf) or ball (L2)"
    )
    norm = Option(Choice(*NORMS), "linf", "'linf' (sign steps, eps box) or 'l2' (eps ball)")

    # --- hooks ----------------------------------------------------------------------------
    def loss(
        self, logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        """Per-image loss (B,) to maximise: CE(y), or -CE(target) when targeted."""
        return cross_entropy(logits, y, target)

    def random_init(self, x: torch.Tensor, eps: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        """Initial delta (B, C, H, W) from the per-image generators: uniform in [-eps, eps]
        (Linf); Gaussian direction scaled to radius U(0, 1) * eps (L2, torchattacks' PGDL2)."""
        if self.norm == "linf":
            return (2 * per_image_rand(x.shape[1:], ctx.generators, x.device) - 1) * eps
        direction = self.normalize(
            per_image_rand(x.shape[1:], ctx.generators, x.device, kind="normal")
        )
        return direction * per_image_rand((1, 1, 1), ctx.generators, x.device) * eps

    def init_state(self, x: torch.Tensor, ctx: BatchContext) -> dict[str, torch.Tensor]:
        """Per-batch state the iterations share (momentum, pre-drawn randomness); none here."""
        return {}

    def transform(
        self, x_adv: torch.Tensor, state: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        """What the model sees at ``step`` (differentiable; identity here)."""
        return x_adv

    def gradient(
        self,
        x_adv: torch.Tensor,
        y: torch.Tensor,
        ctx: BatchContext,
        state: dict[str, torch.Tensor],
        step: int,
    ) -> torch.Tensor:
        """d loss(model(transform(x_adv))) / d x_adv, (B, C, H, W)."""
        _, grad = input_grad(
            lambda z: self.model(self.transform(z, state, step)),
            x_adv,
            lambda logits: self.loss(logits, y, ctx.target),
        )
        return grad

    def normalize(self, grad: torch.Tensor) -> torch.Tensor:
        """Steepest-ascent direction of unit norm: sign (Linf) or grad / ||grad||_2 (L2)."""
        if self.norm == "linf":
            return grad.sign()
        return grad / (grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-12)

    def project(self, delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """delta (B, C, H, W) into the per-image eps (B, 1, 1, 1) box (Linf) or ball (L2);
        may work in place."""
        if self.norm == "linf":
            return delta.clamp_(min=-eps, max=eps)
        norm = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        return delta.mul_((eps / norm.clamp_min(1e-12)).clamp_(max=1))

    # --- the loop -------------------------------------------------------------------------
    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        mask = ctx.mask
        eps = batch_budget(self.eps, x, ctx)
        if self.step_size is None:
            step_size = 2.5 * eps / max(self.steps, 1)
        else:
            step_size = batch_budget(self.step_size, x, ctx)
        if mask is not None:  # the mask in one place: init and every step
            step_size = step_size * mask
        if self.random_start:
            init = self.random_init(x, eps, ctx)
            x_adv = self.project(init if mask is None else init * mask, eps).add_(x).clamp_(0, 1)
            x_adv = self.on_grid(x, x_adv)
        else:
            x_adv = x.clone()
        state = self.init_state(x, ctx)
        for step in range(self.steps):
            grad = self.gradient(x_adv, y, ctx, state, step)
            direction = self.normalize(grad if mask is None else grad * mask)
            delta = x_adv.sub_(x).addcmul_(step_size, direction)  # in place: x_adv holds delta
            x_adv = self.on_grid(x, self.project(delta, eps).add_(x).clamp_(0, 1))
        return x_adv
