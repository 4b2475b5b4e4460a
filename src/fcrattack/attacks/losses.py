"""Per-image losses shared by the attacks; each returns (B,) and is to be *maximised*."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

JT_READINGS = ("literal", "scaled", "distillation")


def log_prob(logits: torch.Tensor, cls: torch.Tensor, complement: bool = False) -> torch.Tensor:
    """log S_cls (B,), or log(1 - S_cls) when ``complement`` (computed stably)."""
    lse = logits.logsumexp(1)
    if not complement:
        return logits.gather(1, cls[:, None])[:, 0] - lse
    others = logits.scatter(1, cls[:, None], float("-inf"))
    return others.logsumexp(1) - lse


def cross_entropy(
    logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """Untargeted: CE(y) (grows as the true class loses); targeted: -CE(target)."""
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def inverse_temperature(
    logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, T: float, reading: str
) -> torch.Tensor:
    """The FCR paper's J_T (Eq. 12), which grows as the attack progresses.

    With p = S_y (untargeted: J_T rises as p falls) or p = 1 - S_target (targeted: rises as the
    target's probability rises):
      literal       -log(p / T)  = -log p + log T (a constant shift of the cross-entropy)
      scaled        -log(p) / T
      distillation  -log p computed from softmax(logits / T)
    """
    if reading not in JT_READINGS:
        raise ValueError(f"J_T reading must be one of {JT_READINGS}, got {reading!r}")
    if reading == "distillation":
        logits = logits / T
    cls, comp = (y, False) if target is None else (target, True)
    nll = -log_prob(logits, cls, complement=comp)
    if reading == "literal":
        return nll + math.log(T)
    if reading == "scaled":
        return nll / T
    return nll


def margin(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """C&W's margin (B,), negative once adversarial: Z_y - max_{i != y} Z_i (untargeted) or
    max_{i != t} Z_i - Z_t (targeted)."""
    cls = y if target is None else target
    own = logits.gather(1, cls[:, None])[:, 0]
    other = logits.scatter(1, cls[:, None], float("-inf")).amax(1)
    return own - other if target is None else other - own
