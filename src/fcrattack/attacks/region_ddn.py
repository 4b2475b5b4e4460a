"""Region DDN: a well-posed FCR attack, a decoupled-direction-and-norm minimum-L2 attack
restricted to the Grad-CAM feature contributive regions (CLI name ``region-ddn``; ``fcr-ddn``
is kept as an alias).

Method: "Decoupling Direction and Norm" (DDN; Rony et al., CVPR 2019) with the radius rule of
"Fast Minimum-norm Adversarial Attacks through Adaptive Norm Constraints" (FMN; Pintor et al.,
NeurIPS 2021), every quantity confined to the FCR mask (Grad-CAM >= t, as in the FCR paper).
Per image, with cosine annealing c_k = (1 + cos(pi k / steps)) / 2:

    delta_0 = 0, eps_0 = 0 (radius "fmn") or min(init_eps, cap) (radius "ddn")
    for k = 0 .. steps - 1:
        alpha_k = min_step_size + (step_size - min_step_size) * c_k
        gamma_k = gamma_final + (gamma - gamma_final) * c_k
        g       = mask * grad_delta loss(f(x + delta_k)),  g = g / ||g||_2
        radius "fmn":  eps = min(eps (1 - gamma_k), best L2)         if x + delta_k adversarial
                       eps (1 + gamma_k)                             if adversarial before
                       max(||delta_k|| + |m| / ||grad||, eps (1 + gamma_k))   otherwise
                       (m the margin: a first-order estimate of the distance to the boundary)
        radius "ddn":  eps (1 - gamma_k) if adversarial, else eps (1 + gamma_k)
        eps     = min(eps, cap),  cap = ||mask * max(x, 1 - x)||_2 (the largest L2 the mask allows)
        delta   = Proj_{||.||_2 <= eps}(delta_k + alpha_k * g)
        delta   = clip(x + delta, 0, 1) - x                    (optionally on the 8-bit grid)
    return per image the smallest-L2 adversarial iterate, the last one included
    (``select="best"``), or the last iterate (``select="last"``, or where no iterate was
    adversarial)

It keeps the FCR paper's idea (perturb only the FCRs, minimise the L2 norm) without its 1/F
objective, whose gradient explodes at the tiny initial delta on [0, 1] images. ``t = 0`` gives
the whole image as the mask: the same method unrestricted, so the two differ only in ``t``.

Loss (maximised): ``"margin-ce"`` (default) follows C&W's margin until an image is first
adversarial (the margin gives the "fmn" radius its distance estimate), then the cross-entropy;
``"margin"`` and ``"ce"`` use one throughout. Radius ``"ddn"`` with ``gamma_final=gamma``,
``gamma=0.05``, ``loss="ce"`` and ``init_search=10`` is fcrattack's earlier region attack: DDN
with an initial radius found by ``init_search`` geometric bisection steps along the first
gradient (forward passes only). Measured effect of each choice: docs/attacks.md.

Departures from the reference implementations: projection onto the eps *ball* (DDN rescales
delta onto the eps sphere), the last iterate is checked too, FMN's distance estimate may not
shrink the radius before the first success (so no image stalls below the boundary), and
images never adversarial return the last iterate (the references return x). Images x
(N, C, H, W) in [0, 1]; eps and step sizes are L2 norms on that scale; targeted mode maximises
the targeted margin / -CE(target) and succeeds when argmax = target.
"""

from __future__ import annotations

import math

import torch

from ..base.seeding import per_image_rand
from ..metrics import attack_success
from ..options import Choice, Float, Int, Option
from .base import Attack, BatchContext
from .grid import GridMixin
from .losses import cross_entropy, margin
from .region import RegionMixin
from .result import BestIterate

LOSSES = ("margin-ce", "margin", "ce")


def _unit(v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(v / ||v||_2 per image, ||v||_2 as (B, 1, 1, 1)); a zero v stays zero."""
    norm = v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return v / norm.clamp_min(1e-12), norm


def _col(t: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1)."""
    return t.view(-1, 1, 1, 1)


class RegionDDN(GridMixin, RegionMixin, Attack):
    """Minimum-L2 attack (DDN) inside the FCR mask. x (N, 3, H, W) in [0, 1] -> x_adv, changed only
    inside the mask (Grad-CAM >= t; the whole image at t = 0, or run()'s ``mask``)."""

    name = "region-ddn"
    label = "FCR region attack (recommended)"
    reports_clean = True

    steps = Option(Int(min=0), 100, "iterations (one forward and backward pass each)")
    radius = Option(
        Choice("fmn", "ddn"),
        "fmn",
        "radius rule: FMN's (boundary estimate, then +-gamma) or DDN's (+-gamma from init_eps)",
    )
    init_eps = Option(Float(min=0.0, min_open=True), 1.0, "initial L2 radius of radius 'ddn'")
    init_search = Option(
        Int(min=0), 0, "bisection steps of an initial radius search along the first gradient"
    )
    gamma = Option(
        Float(0.0, 1.0, min_open=True, max_open=True),
        0.1,
        "relative change of the radius per step at the start",
    )
    gamma_final = Option(
        Float(0.0, 1.0, min_open=True, max_open=True),
        0.005,
        "relative change at the last step (cosine-annealed from gamma; = gamma: constant)",
    )
    step_size = Option(
        Float(min=0.0, min_open=True), 1.0, "first L2 step, cosine-annealed to min_step_size"
    )
    min_step_size = Option(Float(min=0.0, min_open=True), 0.01, "last L2 step")
    loss = Option(
        Choice(*LOSSES), "margin-ce", "loss maximised: margin until first success, then CE"
    )
    select = Option(
        Choice("last", "best"),
        "best",
        "return per image the smallest-L2 adversarial iterate, or the last one",
    )

    def check(self) -> None:
        if self.min_step_size > self.step_size:
            raise ValueError(
                f"option min_step_size ({self.min_step_size:g}) must not exceed "
                f"step_size ({self.step_size:g})"
            )

    def _cosine(self, k: int, start: float, end: float) -> float:
        """Cosine annealing from ``start`` (k = 0) to ``end`` (k = steps)."""
        return end + (start - end) * (1 + math.cos(math.pi * k / self.steps)) / 2

    def _objective(
        self,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        found: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to maximise (B,), margin (B,)); the margin is negative once adversarial."""
        marg = margin(logits, y, target)
        if self.loss == "margin":
            return -marg, marg
        ce = cross_entropy(logits, y, target)
        return (ce if self.loss == "ce" else torch.where(found, ce, -marg)), marg

    def _image(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """x + delta clipped to [0, 1] (and on the 8-bit grid with ``quantize``)."""
        return self.on_grid(x, (x + delta).clamp_(0, 1))

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        mask = ctx.region
        b = x.shape[0]
        # fallback direction for a zero masked gradient, drawn once (no RNG inside the loop)
        fallback, _ = _unit(
            per_image_rand(x.shape[1:], ctx.generators, x.device, kind="normal") * mask
        )
        cap = (torch.maximum(x, 1 - x) * mask).flatten(1).norm(dim=1)
        start = self.init_eps if self.radius == "ddn" else 0.0
        eps = torch.full((b,), start, device=x.device).minimum(cap)
        delta = torch.zeros_like(x)
        best = BestIterate(x)
        found = torch.zeros(b, dtype=torch.bool, device=x.device)
        for k in range(self.steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                logits = self.model(x + delta)
                obj, marg = self._objective(logits, y, ctx.target, found)
                (grad,) = torch.autograd.grad(obj.sum(), delta)
            if k == 0:  # delta = 0: the clean images' logits
                ctx.report_clean(logits)
            delta = delta.detach()
            norm = delta.flatten(1).norm(dim=1)
            is_adv = best.observe(x + delta, norm, logits.detach(), y, ctx.target)
            g, g_norm = _unit(grad * mask)
            g = torch.where(g_norm > 0, g, fallback)
            if k == 0 and self.init_search:  # "fmn" starts at 0: search up to the cap
                upper = eps if self.radius == "ddn" else cap
                eps = self._search_radius(x, y, g, _col(upper), ctx).view(-1)
            else:
                eps = self._next_radius(
                    k,
                    eps,
                    norm,
                    is_adv,
                    found,
                    best.norm,
                    marg.detach().abs() / g_norm.view(-1).clamp_min(1e-12),
                )
            found |= is_adv
            eps = eps.minimum(cap)
            delta = delta.add_(g, alpha=self._cosine(k, self.step_size, self.min_step_size))
            delta = delta.mul_((_col(eps) / _unit(delta)[1].clamp_min(1e-12)).clamp_(max=1))
            delta = self._image(x, delta) - x
        if self.select == "last":
            return x + delta
        # the last iterate replaces the best one where it is smaller and adversarial: run()'s
        # fresh re-check judges it
        x_adv, rows = best.with_last(x + delta, delta.flatten(1).norm(dim=1))
        ctx.fall_back(best.x, rows)
        return x_adv

    def _next_radius(
        self,
        k: int,
        eps: torch.Tensor,
        norm: torch.Tensor,
        is_adv: torch.Tensor,
        found: torch.Tensor,
        best_norm: torch.Tensor,
        distance: torch.Tensor,
    ) -> torch.Tensor:
        """The radius (B,) after step k (see the module docstring); ``distance`` (B,) is the
        first-order estimate |margin| / ||grad|| of the distance to the boundary."""
        gamma = self._cosine(k, self.gamma, self.gamma_final)
        grow = eps * (1 + gamma)
        if self.radius == "ddn":
            return torch.where(is_adv, eps * (1 - gamma), grow)
        shrink = torch.minimum(eps * (1 - gamma), best_norm)
        return torch.where(
            is_adv, shrink, torch.where(found, grow, torch.maximum(norm + distance, grow))
        )

    def _search_radius(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        g: torch.Tensor,
        eps: torch.Tensor,
        ctx: BatchContext,
    ) -> torch.Tensor:
        """(B, 1, 1, 1) smallest adversarial radius along the unit direction g (B, C, H, W)
        that the geometric bisection in [eps / 1000, eps] tried; eps where none was."""
        lo, hi = eps * 1e-3, eps
        for _ in range(self.init_search):
            mid = (lo * hi).sqrt()
            with torch.no_grad():
                logits = self.model(self._image(x, mid * g))
            hit = _col(attack_success(logits.argmax(1), y, ctx.target))
            hi, lo = torch.where(hit, mid, hi), torch.where(hit, lo, mid)
        return hi  # moved only where a radius was adversarial: eps elsewhere
