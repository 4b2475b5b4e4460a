"""Confidence intervals for the numbers fcrattack reports: Wilson intervals for rates and
percentile-bootstrap intervals for means (both 95 % by default). Pure functions, no global
random state: the bootstrap draws from its own seeded generator, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: the two-sided 95 % quantile of the standard normal distribution
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (lo, hi) in [0, 1] of a rate successes / n; (nan, nan) for n = 0.

    Args:
        successes: the count, 0 <= successes <= n.
        n: the number of trials.
        z: the normal quantile of the level (1.96 for 95 %).
    """
    if not 0 <= successes <= n:
        raise ValueError(f"successes ({successes}) must lie in [0, n = {n}]")
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact bounds at 0 and n
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_mean_interval(
    values: torch.Tensor | Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval (lo, hi) of the mean of ``values`` (1-D; non-finite values
    are left out, as in the reported means); (nan, nan) without a finite value.

    Args:
        values: the per-image values (for example the L2 of each successful image).
        level: the coverage of the interval, in (0, 1).
        resamples: the number of bootstrap resamples, drawn in one batch.
        seed: the seed of the generator the resamples are drawn from (the global RNG is not
            touched).
    """
    v = torch.as_tensor(values, dtype=torch.float64).flatten().cpu()
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return math.nan, math.nan
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, 2**22 // v.numel())  # resamples per batch: bounded memory for large n
    means = torch.cat(
        [
            v[torch.randint(v.numel(), (min(chunk, resamples - i), v.numel()), generator=gen)].mean(
                dim=1
            )
            for i in range(0, resamples, chunk)
        ]
    )
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
    return float(lo), float(hi)


def paired_ratio_interval(
    num: torch.Tensor | Sequence[float],
    den: torch.Tensor | Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(ratio, lo, hi): the ratio of means sum(num) / sum(den) of paired values (one pair per
    image, e.g. the L2 two attacks needed on the same image) with its percentile-bootstrap
    interval, resampling the pairs together; (nan, nan, nan) without a pair.

    Args:
        num: the numerator's value per image (1-D).
        den: the denominator's value per image (1-D, same length; positive).
        level: the coverage of the interval, in (0, 1).
        resamples: the number of bootstrap resamples.
        seed: the seed of the generator the resamples are drawn from (the global RNG is not
            touched).
    """
    a = torch.as_tensor(num, dtype=torch.float64).flatten().cpu()
    b = torch.as_tensor(den, dtype=torch.float64).flatten().cpu()
    if a.shape != b.shape:
        raise ValueError(f"num and den must pair up, got {a.numel()} and {b.numel()} values")
    keep = torch.isfinite(a) & torch.isfinite(b)
    a, b = a[keep], b[keep]
    if a.numel() == 0 or b.sum() <= 0:
        return math.nan, math.nan, math.nan
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, 2**22 // a.numel())
    ratios = []
    for i in range(0, resamples, chunk):
        idx = torch.randint(a.numel(), (min(chunk, resamples - i), a.numel()), generator=gen)
        ratios.append(a[idx].sum(1) / b[idx].sum(1))
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(
        torch.cat(ratios), torch.tensor([alpha, 1 - alpha], dtype=torch.float64)
    )
    return float(a.sum() / b.sum()), float(lo), float(hi)
