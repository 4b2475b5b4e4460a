"""What a model does, in a few numbers (``model_probe``): a resumed run compares them with
those its records were made with (``same_probe``), so another model behind the same digest
(``fcrattack.models.fingerprint`` sees its weights and code, not every Python object a
model may consult: a private attribute, a closure, module-level state, a global hook) is
refused all the same, where it differs on the probe's one image (a model that changes only
on other images, through state outside its weights and files, is not told apart).

The probe is the model's logits on one image and the projections of the input gradient of a
fixed mix of them on four fixed directions: a change of the forward pass shows in the
first, one of the backward pass (a hook flipping a gradient) in the second. They are compared
within a tolerance, since another machine (or a GPU) computes them with other rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..base.validation import check_logits
from .mode import eval_mode
from .torch_errors import named_reason

#: the fixed directions' generator seed (any fixed value)
_SEED = 20210101
#: how close two probes must be, relative to the largest magnitude of each of their parts
TOLERANCE = 1e-3


def model_probe(model: nn.Module, x: torch.Tensor) -> list[list[float]]:
    """[logits, gradient projections] of ``model`` on the image x (1, C, H, W) in [0, 1]
    (moved to the model's device), each a list of floats; the projections are empty for a
    model whose output has no gradient. The model's modes are kept (eval inside). A
    ValueError where the output is not finite logits of shape (1, K) (``check_logits``)."""
    param = next(model.parameters(), None)
    x = x.detach().float().to(param.device if param is not None else "cpu")
    gen = torch.Generator().manual_seed(_SEED)
    directions = torch.randn(4, *x.shape[1:], generator=gen).to(x.device)
    x = x.clone().requires_grad_(True)
    with eval_mode(model, warn=False), torch.enable_grad():
        out = model(x)
        check_logits(out, 1)  # before its shape is used: the one error of a wrong output
        logits = out.float()
        mix = torch.randn(logits.shape[1], generator=gen).to(logits.device)
        grads: list[float] = []
        if logits.requires_grad:
            try:
                (g,) = torch.autograd.grad((logits[0] * mix).sum(), x)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a backward the model's own code breaks or exits
                raise ValueError(
                    f"the model's backward pass fails on an image of shape {tuple(x.shape)}: "
                    f"{named_reason(exc)} (the attacks need the gradient "
                    "of the logits with respect to the input)"
                ) from exc
            grads = (directions.flatten(1) @ g.flatten()).tolist()
    return [logits[0].detach().cpu().tolist(), grads]


def same_probe(old: object, new: list[list[float]]) -> bool:
    """Whether probe ``old`` (as read back from JSON) agrees with ``new`` within
    ``TOLERANCE``."""
    if not isinstance(old, list) or len(old) != len(new):
        return False
    for a, b in zip(old, new):
        if not isinstance(a, list) or len(a) != len(b):
            return False
        if not all(v is None or type(v) in (int, float) for v in a):
            return False
        scale = max([abs(v) for v in b if math.isfinite(v)], default=0.0) + 1e-6
        for u, v in zip(a, b):  # JSON holds a non-finite value as null
            if not (abs(u - v) <= TOLERANCE * scale if u is not None else not math.isfinite(v)):
                return False
    return True
