"""One-Pixel attack (Su, Vargas and Sakurai, "One Pixel Attack for Fooling Deep Neural
Networks", IEEE TEVC 2019), L0, batched differential evolution.

A candidate sets ``pixels`` pixels, each encoded as (row, col, value of every channel); the
whole population of every image is evaluated through the model in chunks of
``eval_batch_size`` candidate images, drawn from all images of the batch at once. The default
(``None``) picks the chunk by device: 4096 on an accelerator (CUDA, MPS, ...), where large
batches fill the card; on the CPU about 2**18 input values per chunk (85 CIFAR images, 1 at
224 px), since larger batches leave the cache and cost more per image (measurements in
docs/attacks.md).
Fitness (minimised): the probability of the true class (untargeted) or minus the probability
of the target (targeted).

Su et al.'s scheme: population ``popsize`` (paper default 400), ``steps`` generations (100),
coordinates initialised uniformly over the image (over the mask when one is given), channel
values from N(0.5, 0.5) clipped to [0, 1] (their N(128, 127) on [0, 255]); differential
weight F = 0.5 (``differential_weight``); no
crossover (``crossover=1.0``; a value < 1 switches on binomial crossover with that rate); a
child replaces its parent when its fitness is lower. Mutation (``strategy``):

- ``"best1"`` (default): child_i = pop_best + F * (pop_r1 - pop_r2), r1, r2, i distinct: the
  strategy of the implementations most reproductions use (the popular Keras reproduction
  one-pixel-attack-keras and torchattacks call scipy's ``differential_evolution`` with its
  default ``best1bin`` and recombination 1);
- ``"rand1"``: child_i = pop_r1 + F * (pop_r2 - pop_r3), as Su et al.'s paper text writes it.

best1 is greedier and stronger at equal budgets (docs/attacks.md). Children are
clipped to the image and to [0, 1]; with a mask, a child pixel whose coordinates leave the
mask keeps its parent's coordinates.
An image stops as soon as one of its candidates fools the model (argmax criterion, not Su et
al.'s probability thresholds); the loop ends when every image has stopped (one host sync per
generation). Without success the best member of the final population is returned.

With ``quantize`` every candidate's pixel values are rounded to the 8-bit grid before it is
judged (``fcrattack.attacks.grid``), so the returned image is the one a PNG stores.

Randomness: each image draws its initial population and, every generation, its mutation
indices (and crossover draws) from its own generator, so a batch gives the same result as its
images attacked one by one (up to the model's floating-point batch effects).
"""

from __future__ import annotations

import logging

import torch

from ..metrics import attack_success
from ..options import Choice, Float, Int, Option, Optional
from .base import Attack, BatchContext
from .grid import GridMixin

log = logging.getLogger(__name__)

_PAPER = {"pixels": 5, "popsize": 400, "steps": 100}


class OnePixel(GridMixin, Attack):
    """Few-pixel DE attack. x (N, C, H, W) in [0, 1] -> x_adv with at most ``pixels`` pixels
    changed. ``evaluations`` counts the candidate images evaluated since construction. Paper
    settings: 5 pixels (the FCR paper) with Su et al.'s population 400 and 100 generations."""

    name = "onepixel"
    PAPER = {"cifar10": _PAPER, "imagenet": _PAPER}
    RENAMED = {"F": "differential_weight"}

    pixels = Option(Int(min=1), 5, "pixels changed per image")
    popsize = Option(Int(min=4), 400, "population per image (DE/rand/1 needs 4)")
    steps = Option(Int(min=0), 100, "generations")
    differential_weight = Option(
        Float(min=0.0, min_open=True), 0.5, "DE's differential weight F (old name: F)"
    )
    crossover = Option(
        Float(0.0, 1.0, min_open=True), 1.0, "binomial crossover rate (1: none, Su et al.)"
    )
    strategy = Option(Choice("best1", "rand1"), "best1", "DE mutation strategy")
    eval_batch_size = Option(
        Optional(Int(min=1)), None, "candidate images per forward pass (None: chosen by device)"
    )

    #: candidate images evaluated since construction
    evaluations: int = 0

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse more pixels per candidate than an image of x (N, C, H, W) has."""
        h, w = x.shape[-2:]
        if self.pixels > h * w:
            raise ValueError(
                f"onepixel: pixels={self.pixels} is more than the {h * w} pixels of a {h}x{w} image"
            )

    def _init_population(
        self, x: torch.Tensor, allowed: torch.Tensor, gens: list[torch.Generator]
    ) -> torch.Tensor:
        """(B, P, pixels, 2 + C): coordinates at pixel centres of allowed pixels, values
        N(0.5, 0.5) clipped; image i drawn from gens[i]."""
        _, c, _, w = x.shape
        weights = allowed.flatten(1).float().cpu()
        weights[weights.sum(1) == 0] = 1  # nothing allowed: any draw, the image stays as is
        k = self.popsize * self.pixels
        pops = []
        for wt, g in zip(weights, gens):
            pos = torch.multinomial(wt, k, replacement=True, generator=g)
            vals = (0.5 + 0.5 * torch.randn(k, c, generator=g)).clamp(0, 1)
            coords = torch.stack([pos // w, pos % w], 1).float() + 0.5
            pops.append(torch.cat([coords, vals], 1).view(self.popsize, self.pixels, 2 + c))
        return torch.stack(pops).to(x.device)

    def _draws(
        self, gens: list[torch.Generator], n_params: int, device: torch.device
    ) -> torch.Tensor:
        """(B, P, 3 [+ 1 + n_params]) uniforms in [0, 1) for one generation, row i from
        gens[i]: three mutation indices, then (crossover < 1 only) the forced-mutant
        parameter and one draw per parameter."""
        extra = 0 if self.crossover == 1 else 1 + n_params
        return torch.stack([torch.rand(self.popsize, 3 + extra, generator=g) for g in gens]).to(
            device
        )

    def _mutate(
        self, pop: torch.Tensor, fit: torch.Tensor, u: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """Children (B, P, pixels, 2 + C) of pop (fitness fit (B, P)) from the draws u."""
        b, p, k, d = pop.shape
        h, w = allowed.shape[1:]

        def index(col: int, m: int) -> torch.Tensor:  # uniform integer in [0, m)
            return (u[..., col] * m).long().clamp_max(m - 1)

        # three distinct offsets in [0, P - 2], then r = (i + 1 + offset) mod P avoids i
        o1 = index(0, p - 1)
        o2 = index(1, p - 2)
        o2 = o2 + (o2 >= o1)
        lo, hi = torch.minimum(o1, o2), torch.maximum(o1, o2)
        o3 = index(2, p - 3)
        o3 = o3 + (o3 >= lo)
        o3 = o3 + (o3 >= hi)
        i = torch.arange(p, device=pop.device)
        flat = pop.flatten(2)

        def pick(o: torch.Tensor) -> torch.Tensor:
            return flat.gather(1, ((i + 1 + o) % p)[..., None].expand(-1, -1, k * d))

        if self.strategy == "rand1":
            child = pick(o1) + self.differential_weight * (pick(o2) - pick(o3))
        else:
            base = flat.gather(1, fit.argmin(1)[:, None, None].expand(-1, 1, k * d))
            child = base + self.differential_weight * (pick(o1) - pick(o2))
        if self.crossover < 1:
            cross = u[..., 4:] < self.crossover
            jrand = index(3, k * d)  # one parameter always from the mutant
            cross.scatter_(2, jrand[..., None], True)
            child = torch.where(cross, child, flat)
        child = child.view(b, p, k, d)
        rows = child[..., 0].clamp(0, h - 1e-3)
        cols = child[..., 1].clamp(0, w - 1e-3)
        vals = child[..., 2:].clamp(0, 1)
        pix = rows.long() * w + cols.long()  # a pixel leaving the mask keeps its parent's place
        ok = allowed.flatten(1).gather(1, pix.flatten(1)).view_as(pix)
        rows = torch.where(ok, rows, pop[..., 0])
        cols = torch.where(ok, cols, pop[..., 1])
        return torch.cat([rows[..., None], cols[..., None], vals], -1)

    def _apply(self, x: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Images x (N, C, H, W) with the pixels of cand (N, pixels, 2 + C) set (their values on
        the 8-bit grid with ``quantize``); a later pixel wins where two coincide."""
        n, c, h, w = x.shape
        out = x.clone().view(n, c, h * w)
        pix = cand[..., 0].long() * w + cand[..., 1].long()
        for j in range(self.pixels):  # in order, so that duplicates resolve deterministically
            out.scatter_(2, pix[:, j, None, None].expand(n, c, 1), cand[:, j, 2:, None])
        return self.changes_on_grid(x, out.view_as(x))

    def eval_chunk(self, x: torch.Tensor) -> int:
        """Candidates per forward pass for images like x (N, C, H, W)."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        if x.device.type != "cpu":  # accelerators: large batches fill the card
            return 4096
        return max(1, 2**18 // x[0].numel())

    def _fitness(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        cand: torch.Tensor,
        rows: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fitness and success (both (M,)) of candidates cand (M, pixels, 2 + C) applied to
        images x[rows], evaluated in chunks of ``eval_chunk`` candidates."""
        fit, win = [], []
        chunk = self.eval_chunk(x)
        for s in range(0, cand.shape[0], chunk):
            sl = slice(s, s + chunk)
            r = rows[sl]
            with torch.no_grad():
                logits = self.model(self._apply(x[r], cand[sl]))
            prob = logits.softmax(1)
            cls = y[r] if target is None else target[r]
            pc = prob.gather(1, cls[:, None])[:, 0]
            fit.append(pc if target is None else -pc)
            win.append(attack_success(logits.argmax(1), y[r], None if target is None else cls))
        self.evaluations += cand.shape[0]
        return torch.cat(fit), torch.cat(win)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.popsize
        allowed = (
            torch.ones(b, h, w, dtype=torch.bool, device=x.device)
            if ctx.mask is None
            else (ctx.mask > 0).all(1)
        )
        pop = self._init_population(x, allowed, ctx.generators)
        rows = torch.arange(b, device=x.device).repeat_interleave(p)
        fit, win = self._fitness(x, y, ctx.target, pop.flatten(0, 1), rows)
        fit, win = fit.view(b, p), win.view(b, p)
        # done: has a successful candidate (kept in best) or may change nothing at all
        done = win.any(1) | ~allowed.flatten(1).any(1)
        best = pop.gather(
            1, self._first_best(fit, win)[:, None, None, None].expand(-1, 1, *pop.shape[2:])
        )[:, 0]
        for _ in range(self.steps):
            active = (~done).nonzero()[:, 0]  # host sync: early stop
            if active.numel() == 0:
                break
            # every image draws, done or not, so that each stream is the same in any batch
            u = self._draws(ctx.generators, pop[0, 0].numel(), x.device)
            child = self._mutate(pop[active], fit[active], u[active], allowed[active])
            rows_a = active.repeat_interleave(p)
            cf, cw = self._fitness(x, y, ctx.target, child.flatten(0, 1), rows_a)
            cf, cw = cf.view(-1, p), cw.view(-1, p)
            better = cf < fit[active]
            pop[active] = torch.where(better[..., None, None], child, pop[active])
            fit[active] = torch.where(better, cf, fit[active])
            hit = cw.any(1)
            first = self._first_best(cf, cw)[:, None, None, None].expand(-1, 1, *pop.shape[2:])
            best[active] = torch.where(
                hit[:, None, None], child.gather(1, first)[:, 0], best[active]
            )
            done[active] = hit
        final = pop.gather(1, fit.argmin(1)[:, None, None, None].expand(-1, 1, *pop.shape[2:]))
        best = torch.where(done[:, None, None], best, final[:, 0])
        x_adv = torch.where(allowed.flatten(1).any(1)[:, None, None, None], self._apply(x, best), x)
        log.debug("onepixel: %d of %d images fooled", int(done.sum()), b)
        return x_adv

    @staticmethod
    def _first_best(fit: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
        """(B,) index of the lowest-fitness successful candidate, or of the lowest overall."""
        masked = torch.where(win, fit, fit.new_tensor(float("inf")))
        return torch.where(win.any(1), masked.argmin(1), fit.argmin(1))
