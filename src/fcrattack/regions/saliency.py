"""SmoothGrad input-gradient saliency (Smilkov et al., 2017), batched and seeded per image.

For images x (N, C, H, W) in [0, 1] and classes c (N,): the map is the mean over ``samples``
noisy copies x + e, e ~ N(0, sigma^2) per value, of max_channel |dY_c/dx|, min-max normalised
per image to [0, 1] (the saliency of Simonyan et al., 2014, smoothed). The absolute value is
taken per noisy copy, before the mean (as Captum's NoiseTunnel on ``Saliency`` does; the
SmoothGrad paper's code averages signed gradients first). Each image's noise is
drawn from its own generator, seeded from (seed, image id), so a map does not depend on the
batch it was computed in; the global RNG is not touched.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..base.seeding import image_seeds, per_image_rand
from ..base.validation import check_images, check_labels
from ..cam import normalize_maps
from ..models.gradient import input_grad
from ..models.mode import eval_mode


def smoothgrad(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    samples: int = 16,
    sigma: float = 0.15,
    seed: int = 0,
    ids: Sequence[int | str] | None = None,
) -> torch.Tensor:
    """SmoothGrad maps (N, H, W) in [0, 1] of the logits of classes ``y``.

    Args:
        model: a classifier of images (N, C, H, W) in [0, 1] to logits (N, classes); its
            train/eval mode is restored.
        x: the images (N, C, H, W), float in [0, 1].
        y: the classes (N,) whose logit is differentiated.
        samples: noisy copies per image (>= 1), one forward and backward pass each.
        sigma: standard deviation of the noise on [0, 1] pixels (> 0; 0.15 = the paper's
            10-20 % of the value range).
        seed: with ``ids``, seeds each image's noise.
        ids: one id per image (default: a hash of the image's content).
    """
    check_images(x)
    check_labels(y, x.shape[0])
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if ids is not None and len(ids) != len(x):
        raise ValueError(f"ids has {len(ids)} entries for {len(x)} images")
    gens = [torch.Generator().manual_seed(s) for s in image_seeds(x, seed, ids)]
    y = y.to(x.device).long()

    def score(logits: torch.Tensor) -> torch.Tensor:
        check_labels(y, x.shape[0], logits.shape[1])
        return logits.gather(1, y[:, None])[:, 0]

    with torch.inference_mode(False), eval_mode(model, warn=False):
        y = y.clone()  # normal tensors even when called in inference mode
        total = torch.zeros_like(x[:, 0])
        for _ in range(samples):
            noise = per_image_rand(x.shape[1:], gens, x.device, "normal")
            _, grad = input_grad(model, x.detach().clone() + sigma * noise, score)
            total += grad.abs().amax(1)
    return normalize_maps(total / samples)
