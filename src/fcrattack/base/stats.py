"""Intervals and tests for the numbers fcrattack reports: Wilson intervals for rates,
percentile-bootstrap intervals for means (both 95 % by default), the paired log-ratio test of
two attacks' per-image norms (geometric-mean ratio, t-test, TOST equivalence), Holm's
correction and the exact sign test. Pure functions, no global random state: the bootstrap
draws from its own seeded generator, so a report is reproducible; Student's t tail is computed
here (regularised incomplete beta), so the core package needs no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

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


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b) for x in [0, 1]."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """Upper tail P(T > t) of Student's t distribution with ``df`` > 0 degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as ``pvalues``; NaN stays NaN and is not
    counted as a test): reject a hypothesis at level alpha when its adjusted p <= alpha, which
    controls the family-wise error rate over the finite p-values."""
    finite_at = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    order = sorted(finite_at, key=lambda i: pvalues[i])
    m, running = len(order), 0.0
    out = [math.nan] * len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


class LogRatioTest(NamedTuple):
    """The paired comparison of two attacks' per-image values (see ``log_ratio_test``)."""

    ratio: float  #: geometric mean of num / den over the pairs
    lo: float  #: its percentile-bootstrap interval (level of the call)
    hi: float
    n: int  #: pairs with finite positive values on both sides
    p: float  #: two-sided paired t-test of mean log ratio = 0
    p_equivalent: float  #: TOST p-value of |log ratio| < log(1 + margin)
    margin: float


def log_ratio_test(
    num: torch.Tensor | Sequence[float],
    den: torch.Tensor | Sequence[float],
    *,
    margin: float = 0.05,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> LogRatioTest:
    """The per-image log ratio log(num / den), paired over images: its geometric-mean ratio
    exp(mean log ratio) with a paired percentile-bootstrap interval, a two-sided paired t-test
    of "no difference" and a TOST equivalence test of "within +-``margin``" (the ratio inside
    [1 / (1 + margin), 1 + margin]). A mean of log ratios weighs every image alike, where a
    ratio of means lets a few hard images decide. Fewer than 2 pairs: NaN throughout.

    Args:
        num: the control's value per image (1-D; e.g. the L2 it needed), > 0.
        den: the reference's value per image (1-D, same length), > 0; pairs with a non-finite
            or non-positive value on either side are left out.
        margin: the equivalence margin, a fraction (0.05: +-5 %).
        level: the coverage of the interval, in (0, 1).
        resamples: bootstrap resamples.
        seed: the seed of the bootstrap's own generator (the global RNG is not touched).
    """
    if not margin > 0:
        raise ValueError(f"margin must be positive, got {margin}")
    a = torch.as_tensor(num, dtype=torch.float64).flatten().cpu()
    b = torch.as_tensor(den, dtype=torch.float64).flatten().cpu()
    if a.shape != b.shape:
        raise ValueError(f"num and den must pair up, got {a.numel()} and {b.numel()} values")
    keep = torch.isfinite(a) & torch.isfinite(b) & (a > 0) & (b > 0)
    d = (a[keep] / b[keep]).log()
    n = d.numel()
    if n < 2:
        return LogRatioTest(math.nan, math.nan, math.nan, n, math.nan, math.nan, margin)
    mean_d, sd = float(d.mean()), float(d.std())
    lo, hi = bootstrap_mean_interval(d, level=level, resamples=resamples, seed=seed)
    se, df = sd / math.sqrt(n), n - 1
    if se == 0:  # every pair has the same ratio
        p = 0.0 if mean_d else 1.0
        bound = math.log1p(margin)
        p_eq = 0.0 if abs(mean_d) < bound else 1.0
    else:
        p = min(1.0, 2 * t_sf(abs(mean_d) / se, df))
        bound = math.log1p(margin)
        p_eq = max(t_sf((mean_d + bound) / se, df), t_sf((bound - mean_d) / se, df))
    return LogRatioTest(math.exp(mean_d), math.exp(lo), math.exp(hi), n, p, p_eq, margin)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign (McNemar) test of wins = losses among the discordant pairs: the
    probability under Binomial(wins + losses, 1/2) of a split at least as uneven; 1 for no
    discordant pair."""
    if wins < 0 or losses < 0:
        raise ValueError(f"counts must be >= 0, got {wins} and {losses}")
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2 * tail)
