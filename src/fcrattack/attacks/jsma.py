"""JSMA, the Jacobian-based saliency map attack (Papernot et al., "The Limitations of Deep
Learning in Adversarial Settings", EuroS&P 2016), L0, batched.

Each iteration changes the pair of features (p, q) with the largest pairwise saliency

    alpha = a_p + a_q,  beta = b_p + b_q,  a = d Z_t / dx,  b = d (sum_{j != t} Z_j) / dx
    S(p, q) = -alpha * beta  if alpha > 0 and beta < 0 (theta > 0; signs flipped for theta < 0)

(Z the logits, t the target class) and pushes both by ``theta`` (clipped to [0, 1]; with
``quantize`` rounded to the 8-bit grid, ``fcrattack.attacks.grid``); a changed feature leaves
the search domain. Defaults: ``theta = 1.0`` (features pushed to the maximum),
``gamma = 0.1`` (at most 10 % of the C*H*W input values change: at most
floor(gamma * C*H*W / 2) iterations of two features each).

Memory: only two gradients per iteration (a and b, two backward passes), never the
(classes x features) Jacobian nor a (features x features) table. The best pair is found
exactly but without the quadratic table: S is non-decreasing in (s*a_p, -s*b_p) for each
member of the pair (s = sign(theta)), so a feature weakly dominated in both coordinates by two
other features can be swapped for one of them without lowering S; only the features dominated
by at most one other (a few dozen in practice) are kept, and the pairs among them are scored
in row chunks of at most ``pair_chunk`` elements (so even a worst case, where every feature
is kept, fits).

Target class: targeted mode uses the caller's target; untargeted mode picks per image the most
likely class other than y on the clean image (not torchattacks' fixed (y + 1) % 10), and an
image counts as done as soon as its prediction leaves y. Images that succeeded, or that have
no admissible pair left (no S > 0: the attack gives up on them), stop changing and leave the
batch: each iteration forwards only the still-active images. Two host syncs per iteration: the
indices of the active images (the loop ends when there are none) and the size of the kept
candidate set.
"""

from __future__ import annotations

import logging

import torch

from ..metrics import attack_success
from ..options import Float, Int, Option, Optional
from .base import Attack, BatchContext
from .grid import GridMixin

log = logging.getLogger(__name__)


def _candidates(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(B, n) bool: features weakly dominated (u and v both >=) by at most one other feature.

    u, v (B, n), -inf for features outside the search domain (never kept). A feature is
    dropped when two features earlier in descending-u order both have v >= its v.
    """
    order = u.argsort(dim=1, descending=True, stable=True)
    vs = v.gather(1, order)
    ninf = torch.full_like(vs[:, :1], float("-inf"))
    first = torch.cat([ninf, vs.cummax(1).values[:, :-1]], 1)  # max of the earlier v
    # second largest of v_0..v_i = max_{j <= i} min(v_j, max_{k < j} v_k)
    second = torch.minimum(vs, first).cummax(1).values
    second = torch.cat([ninf, second[:, :-1]], 1)  # ... of the earlier v only
    keep_sorted = second < vs
    return torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)


def best_pair(
    u: torch.Tensor, v: torch.Tensor, chunk: int = 2**24
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Maximise relu(u_p + u_q) * relu(v_p + v_q) over pairs p != q, per row.

    u, v (B, n) float, -inf where a feature may not be chosen. Returns (p, q, score), each (B,);
    score 0 means no admissible pair. Exact; memory O(B * n + chunk). One host sync.
    """
    b = u.shape[0]
    keep = _candidates(u, v)
    k = int(keep.sum(1).max())
    if k < 2:
        zero = torch.zeros(b, dtype=torch.long, device=u.device)
        return zero, zero, torch.zeros(b, dtype=u.dtype, device=u.device)
    # indices of the kept features first (in index order), padded with dropped ones set to -inf
    idx = keep.int().sort(dim=1, descending=True, stable=True).indices[:, :k]
    ok = keep.gather(1, idx)
    uc = u.gather(1, idx).masked_fill(~ok, float("-inf"))
    vc = v.gather(1, idx).masked_fill(~ok, float("-inf"))
    rows = max(1, chunk // (b * k))
    best = torch.full((b,), -1.0, dtype=u.dtype, device=u.device)
    best_i = torch.zeros(b, dtype=torch.long, device=u.device)
    best_j = torch.zeros_like(best_i)
    for r0 in range(0, k, rows):
        r1 = min(k, r0 + rows)
        s = (uc[:, r0:r1, None] + uc[:, None, :]).relu_() * (
            vc[:, r0:r1, None] + vc[:, None, :]
        ).relu_()
        diag = torch.arange(r0, r1, device=u.device)
        s[:, diag - r0, diag] = 0  # a feature does not pair with itself
        val, pos = s.flatten(1).max(1)
        better = val > best
        best = torch.where(better, val, best)
        best_i = torch.where(better, pos // k + r0, best_i)
        best_j = torch.where(better, pos % k, best_j)
    p = idx.gather(1, best_i[:, None])[:, 0]
    q = idx.gather(1, best_j[:, None])[:, 0]
    return p, q, best.clamp_min(0)


class JSMA(GridMixin, Attack):
    """JSMA with pairwise saliency. x (N, C, H, W) in [0, 1] -> x_adv with at most
    gamma * C*H*W changed values (each pushed by ``theta``). The paper gives no JSMA settings:
    ``paper()`` gives the defaults (Papernot et al.'s theta = 1, gamma = 0.1)."""

    name = "jsma"

    theta = Option(Float(nonzero=True), 1.0, "change of each chosen feature (negative: decrease)")
    gamma = Option(
        Float(0.0, 1.0, min_open=True), 0.1, "largest fraction of the C*H*W values that may change"
    )
    steps = Option(
        Optional(Int(min=0)),
        None,
        "cap on the iterations below floor(gamma * C*H*W / 2) (None: that bound)",
    )
    pair_chunk = Option(Int(min=1), 2**24, "most pair scores held in memory at once")

    def max_iterations(self, n_features: int) -> int:
        """Iterations allowed for inputs of ``n_features`` values (two features each)."""
        bound = int(self.gamma * n_features) // 2
        return bound if self.steps is None else min(bound, self.steps)

    def _forward_grads(
        self, x: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """logits (B, K), a = dZ_t/dx and b = d(sum_{j != t} Z_j)/dx, both (B, C*H*W)."""
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(x)
            zt = logits.gather(1, t[:, None])[:, 0]
            (a,) = torch.autograd.grad(zt.sum(), x, retain_graph=True)
            (b,) = torch.autograd.grad((logits.sum(1) - zt).sum(), x)
        return logits.detach(), a.flatten(1), b.flatten(1)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        bsz = x.shape[0]
        n = x[0].numel()
        sign = 1.0 if self.theta > 0 else -1.0
        clean = x.reshape(bsz, n)
        flat = clean.clone()
        domain = flat < 1 if sign > 0 else flat > 0  # features that can still move
        if ctx.mask is not None:
            domain &= (ctx.mask > 0).expand_as(x).reshape(bsz, n)
        target = ctx.target
        if target is None:
            with torch.no_grad():
                logits = self.model(x)
            target = logits.scatter(1, y[:, None], float("-inf")).argmax(1)
        active = torch.ones(bsz, dtype=torch.bool, device=x.device)
        stuck = torch.zeros_like(active)
        for _ in range(self.max_iterations(n)):
            idx = active.nonzero()[:, 0]  # host sync; only the active images are computed
            if idx.numel() == 0:
                break
            logits, a, b = self._forward_grads(flat[idx].view(-1, *x.shape[1:]), target[idx])
            go = ~attack_success(
                logits.argmax(1), y[idx], None if ctx.target is None else target[idx]
            )
            free = domain[idx] & go[:, None]
            u = (sign * a).masked_fill(~free, float("-inf"))
            v = (-sign * b).masked_fill(~free, float("-inf"))
            p, q, score = best_pair(u, v, self.pair_chunk)  # host sync
            stuck[idx] = go & (score <= 0)
            go &= score > 0
            active[idx] = go
            pq = torch.stack([p, q], 1)
            step = torch.zeros_like(u).scatter_(1, pq, self.theta) * go[:, None]
            flat[idx] = self.changes_on_grid(clean[idx], (flat[idx] + step).clamp_(0, 1))
            domain[idx] = domain[idx].scatter(1, pq, False)  # rows not in go never return
        log.debug("jsma: %d of %d images had no admissible pair left", int(stuck.sum()), bsz)
        return flat.view_as(x)
