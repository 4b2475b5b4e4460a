"""Run a model in eval mode for the duration of a block and restore every module's mode after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from ..base import warn as notices


@contextmanager
def eval_mode(model: nn.Module, *, warn: bool = True) -> Iterator[nn.Module]:
    """Switch ``model`` to eval mode inside the block; each submodule's previous ``training``
    flag is restored afterwards (also on error). Warns when the model arrived in train mode,
    because BatchNorm/Dropout in train mode would make attacks non-deterministic."""
    modes = [(m, m.training) for m in model.modules()]
    if warn and model.training:
        notices.warn(
            "model was in training mode; switching to eval mode for the attack "
            "(its mode is restored afterwards)",
            stacklevel=4,
        )
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
