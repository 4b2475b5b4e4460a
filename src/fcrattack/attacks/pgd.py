"""PGD: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR
2018), batched, on the ``GradientAttack`` template:

    x_0 = x + U(-eps, eps) (``random_start``), x_{k+1} = clip(Proj_eps(x_k + a * dir_k), 0, 1)

with dir = sign(grad) (``PGD``, Linf) or grad / ||grad||_2 (``PGDL2``).

PGD's defaults are the FCR paper's settings (random start as in torchattacks); PGDL2's step
size defaults to 2.5 * eps / steps and its random start is at radius U(0, 1) * eps.
``eps`` and ``step_size`` may be floats >= 0 or per-image
tensors (N,) aligned with run()'s x, e.g. ``PGDL2(model, eps=fcr_result.norms["l2"])`` for the
paper's "same L2 budget" comparison. Images (N, C, H, W) in [0, 1]; ``mask`` of run()
restricts the change.
"""

from __future__ import annotations

from .gradient import GradientAttack

_PAPER = {"eps": 16 / 255, "steps": 20, "step_size": 2 / 255, "random_start": True}


class PGD(GradientAttack):
    """Projected gradient descent, Linf by default (``norm="l2"``: see ``PGDL2``)."""

    name = "pgd"
    PAPER = {"cifar10": _PAPER, "imagenet": _PAPER}

    eps = GradientAttack.eps.replace(16 / 255)
    steps = GradientAttack.steps.replace(20)
    step_size = GradientAttack.step_size.replace(2 / 255)
    random_start = GradientAttack.random_start.replace(True)


class PGDL2(PGD):
    """PGD in the L2 norm (the paper has no L2 PGD: ``paper()`` gives the defaults)."""

    name = "pgdl2"
    PAPER = {}
    norm = "l2"

    eps = GradientAttack.eps.replace(
        1.0,
        "L2 budget on [0, 1] images, a float or per-image (N,); from sqrt(C*H*W) (the "
        "largest L2 between two images) on, it constrains nothing",
    )
    step_size = GradientAttack.step_size.replace(None)
