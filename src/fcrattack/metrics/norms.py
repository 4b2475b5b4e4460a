"""Perturbation metrics, per image, on the [0, 1] pixel scale unless stated.

- ``l2``: ||x' - x||_2 over all C*H*W values; ``l2_255`` the same on the [0, 255] scale.
- ``linf``: max |x' - x|; ``linf_255`` on [0, 255].
- ``l0``: number of changed values (of C*H*W); ``l0_pixels``: pixels with any channel changed.
  A NaN value counts as changed.
- ``psnr``: 10 log10(MAX^2 / MSE) with MAX = 1 on [0, 1] images (equal to MAX = 255 on
  [0, 255] images); inf for an unchanged image.
- ``psnr_255``: MAX = 255 applied to MSE measured on [0, 1] images, i.e. ``psnr`` + 48.13 dB.
  This mixed convention is what the FCR paper's PSNR column matches (see docs/reproduction.md).
"""

from __future__ import annotations

import math

import torch

from ..base.stats import bootstrap_mean_interval, wilson_interval

PSNR_255_OFFSET = 20 * math.log10(255.0)

#: the metric conventions, stated once for every table, page and summary that reports them
CONVENTIONS = (
    "ASR = successful / attacked images, over the images the model classified correctly "
    "before the attack (untargeted; all images when targeted); 'after uint8' re-checks success "
    "after rounding the adversarial images to 8 bits (what a PNG holds). Norms are means over "
    "the successful images. L2 and Linf are on [0, 1] pixels and, marked 255, on [0, 255] "
    "pixels; L0 counts changed values (of C*H*W) and 'L0 px' changed pixels. PSNR uses "
    "MAX = 1 on [0, 1] images; PSNR_255 applies MAX = 255 to the MSE of [0, 1] images "
    "(PSNR + 48.13 dB), the convention the FCR paper's PSNR column matches. Values that are "
    "not finite (the PSNR of an unchanged image) are left out of means and written as null "
    "in JSON. Brackets hold 95 % intervals: Wilson for rates, percentile bootstrap over the "
    "images for means; a difference to the paper inside that interval is marked as such."
)


#: the per-image norms of ``perturbation_norms``, in its order
NORMS = ("l2", "l2_255", "linf", "linf_255", "l0", "l0_pixels", "psnr", "psnr_255")


def perturbation_norms(
    x: torch.Tensor, x_adv: torch.Tensor, tol: float = 0.0
) -> dict[str, torch.Tensor]:
    """Per-image metrics of x_adv - x, both (N, C, H, W); each value has shape (N,).

    A value counts as changed in L0 when |x' - x| > tol.
    """
    if x.shape != x_adv.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(x_adv.shape)}")
    d = (x_adv - x).flatten(1).float()
    changed = ~(d.abs() <= tol)  # NaN counts as changed
    mse = d.pow(2).mean(1)
    psnr = 10 * torch.log10(1.0 / mse)  # inf where mse == 0
    l2 = d.norm(dim=1)
    linf = d.abs().amax(1)
    pixels = (~(x_adv - x).abs().le(tol)).any(1).flatten(1).sum(1)
    return {
        "l2": l2,
        "l2_255": 255 * l2,
        "linf": linf,
        "linf_255": 255 * linf,
        "l0": changed.sum(1),
        "l0_pixels": pixels,
        "psnr": psnr,
        "psnr_255": psnr + PSNR_255_OFFSET,
    }


def attack_success(
    pred: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None
) -> torch.Tensor:
    """(N,) bool from predicted classes (N,): pred != y (untargeted) or pred == target."""
    return pred == target if target is not None else pred != y


def asr(success: torch.Tensor, valid: torch.Tensor | None = None) -> float:
    """Attack success rate in [0, 1] over the images where ``valid`` (default: all)."""
    if valid is not None:
        success = success[valid]
    return float(success.float().mean()) if success.numel() else float("nan")


def summarize(
    norms: dict[str, torch.Tensor], success: torch.Tensor, valid: torch.Tensor | None = None
) -> dict[str, float]:
    """Aggregate: ASR over ``valid`` images, and mean norms over the *successful* valid ones
    (the usual convention: failed attempts have no meaningful adversarial norm), each with its
    95 % interval: ``asr_lo``/``asr_hi`` (Wilson) and ``<norm>_lo``/``<norm>_hi`` (percentile
    bootstrap over the images, seeded: see ``fcrattack.base.stats``).

    Args:
        norms: name -> per-image values (N,), e.g. from ``perturbation_norms``.
        success: (N,) bool, the attack succeeded on the image.
        valid: (N,) bool, the images that count (default: all).
    """
    valid = torch.ones_like(success) if valid is None else valid
    ok = success & valid
    n, n_success = int(valid.sum()), int(ok.sum())
    lo, hi = wilson_interval(n_success, n)
    out: dict[str, float] = {
        "n": n,
        "n_success": n_success,
        "asr": asr(success, valid),
        "asr_lo": lo,
        "asr_hi": hi,
    }
    for k, v in norms.items():
        vals = v[ok].double()
        vals = vals[torch.isfinite(vals)]  # e.g. the PSNR of an unchanged image
        out[k] = float(vals.mean()) if vals.numel() else float("nan")
        out[f"{k}_lo"], out[f"{k}_hi"] = bootstrap_mean_interval(vals)
    return out


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] images to the 256 levels a PNG stores (what saving and reloading gives)."""
    return torch.round(x.clamp(0, 1) * 255) / 255
