"""The checks of ``load_model``'s overrides of a model's own settings: normalisation, input
size and class names (their count against the model's outputs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .info import ModelInfo
from .normalize import Normalized

#: the largest ``size=`` (input side in pixels) beyond the model's own
MAX_SIDE = 4096


def check_overrides(
    mean: Sequence[float] | None, std: Sequence[float] | None, size: int | None
) -> None:
    """mean and std: one value per input channel (3 for RGB, 1 for grey); size: positive."""
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and len(values) not in (1, 3):
            raise ValueError(
                f"{name} has {len(values)} values: give one per input channel (3 for RGB "
                "images, 1 for a grey model)"
            )
    if mean is not None and std is not None and len(mean) != len(std):
        raise ValueError(
            f"mean has {len(mean)} values but std has {len(std)}: give one per input channel "
            "for both"
        )
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"size must be a positive number of pixels, got {size!r}")


def outputs_of(model: Normalized, info: ModelInfo) -> int | None:
    """The number of outputs of ``model``, from one forward pass of a black image of its input
    size (32 px when unknown; None when that pass fails: the images will tell)."""
    side = info.input_size or 32
    x = torch.zeros(1, model.mean.shape[1], side, side, device=model.mean.device)
    try:
        with torch.no_grad():
            out = model(x)
    except KeyboardInterrupt:
        raise
    except BaseException:  # fixed other sizes, or the model's own failure: its next call tells
        return None
    return int(out.shape[1]) if isinstance(out, torch.Tensor) and out.dim() == 2 else None


def check_size(size: int, own: int | None) -> None:
    """Refuse an input side ``size`` above ``MAX_SIDE`` unless the model's ``own`` is larger:
    images that large would not fit in memory (before any batch or gradient)."""
    if size > max(MAX_SIDE, own or 0):
        raise ValueError(
            f"size {size} is above {MAX_SIDE} pixels, the largest input fcrattack resizes "
            f"to unless the model's own is larger (one {size} x {size} image takes "
            f"{3 * 4 * size**2 / 2**30:.1f} GiB as float32, before batches and gradients)"
        )
