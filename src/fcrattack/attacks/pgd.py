"""PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR
2018), batched, on the :class:`~fcrattack.attacks.gradient.GradientAttack` template:

    x_0 = x + U(-eps, eps) (``random_start``), x_{k+1} = clip(Proj_eps(x_k + a * dir_k), 0, 1)

with dir = sign(grad) (:class:`PGD`, Linf) or grad / ||grad||_2 (:class:`PGDL2`).

Defaults = the FCR paper's PGD preset (``PGD.paper(model)``): Linf, eps = 16/255, 20 steps,
step 2/255, random start (torchattacks' default). PGDL2 defaults: eps = 1.0 (L2 on [0, 1]
CIFAR images; at most sqrt(C*H*W)), 20 steps, step_size None = 2.5 * eps / steps, random
start at radius U(0, 1) * eps. ``eps`` and ``step_size`` may be floats >= 0 or per-image
tensors (N,) aligned with run()'s x, e.g. ``PGDL2(model, eps=fcr_result.norms["l2"])`` for the
paper's "same L2 budget" comparison. Images (N, C, H, W) in [0, 1]; ``mask`` of run()
restricts the change.
"""

from __future__ import annotations

from torch import nn

from .gradient import Budget, GradientAttack


class PGD(GradientAttack):
    """Projected gradient descent, Linf by default (``norm="l2"``: see :class:`PGDL2`)."""

    name = "pgd"
    PAPER = {"eps": 16 / 255, "steps": 20, "step_size": 2 / 255, "random_start": True}

    def __init__(self, model: nn.Module, *, eps: Budget = 16 / 255, steps: int = 20,
                 step_size: Budget | None = 2 / 255, random_start: bool = True,
                 norm: str = "linf", targeted: bool = False, seed: int = 0,
                 batch_size: int | None = None) -> None:
        super().__init__(model, eps=eps, steps=steps, step_size=step_size,
                         random_start=random_start, norm=norm, targeted=targeted, seed=seed,
                         batch_size=batch_size)


class PGDL2(PGD):
    """PGD in the L2 norm."""

    name = "pgdl2"
    PAPER = {}  # the paper has no L2 PGD; paper() gives the defaults

    def __init__(self, model: nn.Module, *, eps: Budget = 1.0, steps: int = 20,
                 step_size: Budget | None = None, random_start: bool = True,
                 targeted: bool = False, seed: int = 0, batch_size: int | None = None) -> None:
        super().__init__(model, eps=eps, steps=steps, step_size=step_size,
                         random_start=random_start, norm="l2", targeted=targeted, seed=seed,
                         batch_size=batch_size)
