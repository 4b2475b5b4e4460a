"""The input gradient of a loss of a model's output, the one backward pass that attacks and
saliency maps share."""

from __future__ import annotations

from collections.abc import Callable

import torch


def input_grad(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss per image (B,), d sum(loss) / dx (B, C, H, W)) with x detached. ``model`` is a module
    or any function from images to logits; its parameters get no gradient (only the input's
    is computed)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = loss_fn(logits)
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad
