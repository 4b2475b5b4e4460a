"""Confidence intervals: Wilson intervals against closed forms and published values, the
bootstrap's determinism, coverage and independence from the global RNG, and the report cells
that carry them."""

from __future__ import annotations

import math

import pytest
import torch

from fcrattack.base.stats import bootstrap_mean_interval, wilson_interval
from fcrattack.metrics import summarize
from fcrattack.viz.document import diff, fmt_interval, rate

Z2 = 1.959963984540054**2


def test_wilson_closed_forms():
    # all failures / all successes: the bound is z^2 / (n + z^2) away from the rate
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(Z2 / (10 + Z2), abs=1e-12)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + Z2), abs=1e-12)
    # 5/10: symmetric about 0.5, the textbook [0.2366, 0.7634]
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert lo + hi == pytest.approx(1.0, abs=1e-12)


def test_wilson_rejects_and_handles_empty():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(11, 10)


def test_bootstrap_deterministic_contains_mean_and_leaves_global_rng():
    gen = torch.Generator().manual_seed(3)
    values = torch.rand(200, generator=gen, dtype=torch.float64)
    state = torch.get_rng_state()
    a = bootstrap_mean_interval(values)
    assert torch.equal(state, torch.get_rng_state())
    assert a == bootstrap_mean_interval(values)
    assert a[0] < float(values.mean()) < a[1]
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    width = 2 * 1.959964 * float(values.std()) / math.sqrt(200)
    assert a[1] - a[0] == pytest.approx(width, rel=0.15)
    assert bootstrap_mean_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    nan_free = bootstrap_mean_interval([1.0, math.nan, 3.0, math.inf])
    assert nan_free == bootstrap_mean_interval([1.0, 3.0])
    assert all(math.isnan(v) for v in bootstrap_mean_interval([math.nan]))


def test_bootstrap_coverage_about_95_percent():
    """Over 200 samples of 50 draws from a known distribution (exponential, mean 1), the
    interval holds the true mean about 95 % of the time (percentile bootstrap: a little
    less for skewed data and small n)."""
    gen = torch.Generator().manual_seed(0)
    draws = torch.empty(200, 50, dtype=torch.float64).exponential_(generator=gen)
    hits = sum(
        lo <= 1.0 <= hi
        for lo, hi in (
            bootstrap_mean_interval(row, resamples=500, seed=i) for i, row in enumerate(draws)
        )
    )
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_large_n_in_chunks_equals_definition():
    """Resampling in bounded chunks for large n: the result is still a valid interval."""
    values = torch.linspace(0, 1, 20_000, dtype=torch.float64)
    lo, hi = bootstrap_mean_interval(values, resamples=300)
    assert lo < 0.5 < hi and hi - lo < 0.02


def test_summarize_intervals():
    success = torch.tensor([True, True, False, True])
    norms = {"l2": torch.tensor([1.0, 2.0, 9.0, 3.0])}
    s = summarize(norms, success)
    assert (s["asr_lo"], s["asr_hi"]) == wilson_interval(3, 4)
    assert s["l2_lo"] <= s["l2"] == 2.0 <= s["l2_hi"]
    assert s["l2_lo"] >= 1.0 and s["l2_hi"] <= 3.0  # resampled from the successful ones only


def test_report_cells():
    assert rate(35, 40) == "87.50 % (35/40) [73.9, 94.5]"
    assert rate(0, 0) == "- (0/0)"
    assert fmt_interval(0.25612, (0.2311, 0.2809), 3) == "0.256 [0.231, 0.281]"
    assert fmt_interval(0.25, (math.nan, math.nan), 3) == "0.250"
    assert fmt_interval(None, (0.1, 0.2)) == "-"
    assert diff(87.5, 93.18, (73.9, 94.5)) == "-5.68 (within 95 % CI)"
    assert diff(100.0, 93.18, (95.4, 100.0)) == "+6.82"
    assert diff(100.0, 93.18) == "+6.82"
