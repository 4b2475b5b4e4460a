"""Normalisation wrapper: every model fcrattack hands out takes images in [0, 1]."""

from collections.abc import Sequence

import torch
from torch import nn

from ..base.validation import check_floating, check_output
from .info import ModelInfo


class Normalized(nn.Module):
    """``model((x - mean) / std)`` for x in [0, 1] of shape (N, C, H, W); the output must be
    one floating-point tensor (``check_output``; scripted, ``check_floating``).

    The wrapped network stays reachable as ``.model`` so that layer names read
    ``model.<name>`` (e.g. ``model.layer3``) when a Grad-CAM layer is chosen by name.

    Args:
        model: the network; takes normalised images, returns logits (N, classes).
        mean: per-channel mean subtracted from [0, 1] inputs (C values).
        std: per-channel standard deviation (C positive values).
        info: what the model says about itself (input size, class names, Grad-CAM layer):
            ``ModelInfo``, set by every loader of
            ``fcrattack.models``; None when unknown.
    """

    mean: torch.Tensor
    std: torch.Tensor
    #: the number of class names of ``info`` (-1: unknown), the one fact of ``info`` that
    #: ``forward`` checks, kept as an int so that the wrapper stays scriptable
    num_names: int
    __jit_unused_properties__ = ["info"]

    def __init__(
        self,
        model: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
        info: ModelInfo | None = None,
    ) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(
                f"mean has {len(mean)} values but std has {len(std)}: give one per input "
                "channel for both"
            )
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {tuple(std)}")
        self.model = model
        self.info = info
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(
                f"the model takes images of shape (N, {self.mean.shape[1]}, H, W), got a "
                f"tensor of shape {list(x.shape)}"
            )
        if x.shape[1] != self.mean.shape[1]:  # the batch size may be a probe's: not shown
            raise ValueError(
                f"the model takes {self.mean.shape[1]}-channel images (N, "
                f"{self.mean.shape[1]}, H, W), got {x.shape[1]}-channel ones; convert "
                "grey images with x.expand(-1, 3, -1, -1)"
            )
        out = self.model((x - self.mean) / self.std)
        if torch.jit.is_scripting():  # the output is typed a Tensor there
            check_floating(out)
        else:  # where the output of every loaded model is first seen
            check_output(out)
        if self.num_names >= 0 and out.dim() == 2 and out.shape[1] != self.num_names:
            raise ValueError(
                f"the model returns {out.shape[1]} scores per image but has {self.num_names} "
                "class names: give one name per output"
            )
        return out

    @property
    def info(self) -> ModelInfo | None:
        """What the model says about itself (``ModelInfo``), or None."""
        return self._info

    @info.setter
    def info(self, value: ModelInfo | None) -> None:
        self._info = value
        classes = value.classes if value is not None else None
        self.num_names = len(classes) if classes is not None else -1
