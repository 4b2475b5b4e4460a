"""Checks on a model before it is attacked (in the spirit of RobustBench / AutoAttack's
"flags"): gradient attacks silently give wrong numbers on models that return probabilities,
are non-deterministic, or mask their input gradient."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ...models.mode import eval_mode

log = logging.getLogger(__name__)


def preflight(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, name: str = "model"
) -> list[str]:
    """Warnings (empty when all checks pass) for ``model`` on a few images x (B, C, H, W) in
    [0, 1] with labels y (B,); each is also logged at WARNING level.

    Checks: the output looks like logits (rows summing to 1 with values in [0, 1] suggest
    probabilities); two forward passes agree (determinism); the cross-entropy's input
    gradient is not all zero (no gradient masking, no detached input).
    """
    warnings: list[str] = []
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    x, y = x.to(dev), y.to(dev)
    with eval_mode(model, warn=False):
        with torch.no_grad():
            out1, out2 = model(x), model(x)
        rows = out1.sum(1)
        if bool(((out1 >= 0) & (out1 <= 1)).all()) and torch.allclose(
            rows, torch.ones_like(rows), atol=1e-3
        ):
            warnings.append(
                f"{name}: outputs look like probabilities (every row in [0, 1] "
                "and summing to 1); attacks and losses expect logits"
            )
        if not torch.equal(out1, out2):
            diff = float((out1 - out2).abs().max())
            warnings.append(
                f"{name}: not deterministic: two forward passes differ by up to {diff:.3g}"
            )
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            loss = nn.functional.cross_entropy(model(xg), y)
            grads = torch.autograd.grad(loss, xg, allow_unused=True)[0]
        if grads is None or not bool(grads.abs().gt(0).any()):
            warnings.append(
                f"{name}: the input gradient is all zero (gradient masking or a "
                "detached input); gradient attacks cannot work"
            )
    for w in warnings:
        log.warning("PRE-FLIGHT CHECK FAILED: %s", w)
    return warnings
