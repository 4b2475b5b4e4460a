"""C&W L2: Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks" (IEEE S&P
2017), batched:

    x'(w) = clip(x + (img(w) - img(w_0)) * mask, 0, 1),  img(w) = (tanh(w) + 1) / 2,
            w_0 = atanh((2x - 1) * (1 - 1e-6))     (so x'(w_0) = x exactly)
    minimise over w:  ||x' - x||_2^2 + c * max(Z_y - max_{i != y} Z_i, -kappa)   (per image)
    (targeted: max(max_{i != t} Z_i - Z_t, -kappa)), with Adam.

Per image, the attack keeps the smallest-L2 iterate that is adversarial (argmax criterion and
margin <= -kappa) and, if ``eps`` is given, within L2 <= eps (float or per-image (N,), e.g. the
L2 FCR reached, for the paper's "same L2 budget" comparison); images never adversarial come
back unchanged. ``binary_search_steps`` > 1 searches c per image (batched, Carlini's update:
halve towards the bracket once found, else multiply by 10), restarting from w_0 each time.

The defaults are the FCR paper's settings (no binary search). ``abort_early`` (default on,
as in Carlini's code and torchattacks) stops an image once its loss stops falling (checked
every steps // 10 steps;
per image, unlike their whole-batch rule, so a batch gives its images' one-by-one results) and
drops it from the batch; this costs one host sync per check. Success is read from each step's
forward pass, as torchattacks does. Images (N, C, H, W) in [0, 1];
``mask`` of run() restricts the change (w moves only where the mask is non-zero). With
``quantize`` each iterate is rounded to the 8-bit grid (w's gradient passing straight
through), so the kept iterate is adversarial as a saved PNG.
"""

from __future__ import annotations

from typing import Any

import torch

from ..base.validation import check_differentiable
from ..metrics import attack_success
from ..options import Bool, Budget, Float, Int, Option, Optional
from .base import Attack, BatchContext
from .gradient import batch_budget
from .grid import GridMixin
from .losses import margin
from .result import BestIterate

_PAPER = {"c": 1.0, "kappa": 0.0, "lr": 0.01, "steps": 1000, "binary_search_steps": 1}


class CW(GridMixin, Attack):
    """Carlini-Wagner L2 attack (minimum-norm, with an optional L2 budget ``eps``)."""

    name = "cw"
    PAPER = {"cifar10": _PAPER, "imagenet": _PAPER}

    c = Option(Float(min=0.0, min_open=True), 1.0, "weight of the margin term (initial c)")
    kappa = Option(Float(min=0.0), 0.0, "confidence margin")
    lr = Option(Float(min=0.0, min_open=True), 0.01, "Adam learning rate (in tanh space)")
    steps = Option(Int(min=0), 1000, "Adam steps per value of c")
    binary_search_steps = Option(Int(min=1), 1, "values of c tried per image")
    abort_early = Option(Bool(), True, "stop an image once its loss stops falling")
    eps = Option(
        Optional(Budget()),
        None,
        "L2 budget: keep only iterates with L2 <= eps (float or per-image (N,))",
    )

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        b = x.shape[0]
        w0 = torch.atanh((2 * x - 1) * (1 - 1e-6))
        budget = (
            torch.full((b,), float("inf"), device=x.device)
            if self.eps is None
            else batch_budget(self.eps, x, ctx).view(-1) ** 2
        )
        c = torch.full((b,), self.c, device=x.device)
        lo, hi = torch.zeros_like(c), torch.full_like(c, float("inf"))
        best = BestIterate(x)  # norm: squared L2
        for _ in range(self.binary_search_steps):
            found = self._optimise(x, y, ctx, w0, c, budget, best)
            hi = torch.where(found, torch.minimum(hi, c), hi)
            lo = torch.where(found, lo, torch.maximum(lo, c))
            c = torch.where(torch.isinf(hi), c * 10, (lo + hi) / 2)
        return best.x

    def _optimise(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        ctx: BatchContext,
        w0: torch.Tensor,
        c: torch.Tensor,
        budget: torch.Tensor,
        best: BestIterate,
    ) -> torch.Tensor:
        """Adam on w from w0 for one c (B,); records the smallest (squared) L2 adversarial
        iterates in ``best``; returns which images (B,) were adversarial within budget at some step.

        With ``abort_early``, every max(steps // 10, 1) steps an image whose loss fell by less
        than 0.01 % since the last check stops, and the batch shrinks to the images still
        running (one host sync per check, none in between)."""
        rows = torch.arange(x.shape[0], device=x.device)
        per_image: dict[str, Any] = {
            "x": x,
            "y": y,
            "target": ctx.target,
            "mask": ctx.mask,
            "c": c,
            "budget": budget,
            "img0": (torch.tanh(w0) + 1) / 2,
            "w": w0.clone(),
            "m": torch.zeros_like(w0),
            "v": torch.zeros_like(w0),
            "prev": torch.full_like(c, 1e10),
        }
        found = torch.zeros_like(rows, dtype=torch.bool)
        check = max(self.steps // 10, 1)
        b1, b2 = 0.9, 0.999
        for step in range(1, self.steps + 1):
            t = per_image
            w = t["w"].requires_grad_(True)
            with torch.enable_grad():
                change = (torch.tanh(w) + 1) / 2 - t["img0"]
                if t["mask"] is not None:
                    change = change * t["mask"]
                x_adv = self.straight_through(t["x"], (t["x"] + change).clamp(0, 1))
                l2 = (x_adv - t["x"]).flatten(1).pow(2).sum(1)
                logits = self.model(x_adv)
                if step == 1:  # the distance term alone would give a gradient: no error
                    check_differentiable(logits)
                marg = margin(logits, t["y"], t["target"])
                loss = l2 + t["c"] * marg.clamp_min(-self.kappa)
                (g,) = torch.autograd.grad(loss.sum(), w)
            with torch.no_grad():  # Adam (torch.optim.Adam's defaults), in place
                t["m"].mul_(b1).add_(g, alpha=1 - b1)
                t["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (t["v"] / (1 - b2**step)).sqrt_().add_(1e-8)
                w.detach_().addcdiv_(t["m"], denom, value=-self.lr / (1 - b1**step))
                ok = (
                    attack_success(logits.argmax(1), t["y"], t["target"])
                    & (marg <= -self.kappa)
                    & (l2 <= t["budget"])
                )
                found[rows] |= ok
                best.update(x_adv, ok, l2, rows)
            if self.abort_early and step % check == 0:
                loss = loss.detach()
                running = loss <= t["prev"] - 1e-4 * t["prev"].abs()
                t["prev"] = loss
                if not running.all():  # host sync, once per check
                    keep = running.nonzero()[:, 0]
                    if keep.numel() == 0:
                        break
                    rows = rows[keep]
                    per_image = {k: None if v is None else v[keep] for k, v in t.items()}
        return found
