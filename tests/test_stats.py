"""Tests for promptc.evaluation.stats against published or hand-computed values (no scipy)."""

from __future__ import annotations

import math
import random
import statistics
import time
from fractions import Fraction

import pytest

from promptc.evaluation.stats import (
    Interval,
    PairedComparison,
    compare,
    is_regression,
    mcnemar,
    mean_ci,
    paired_bootstrap,
    percentile,
    t_cdf,
    t_quantile,
    wilson_interval,
)

# ---------------------------------------------------------------- Student's t


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        # Standard t-table values (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
        (0.975, 1, 12.706205),
        (0.975, 2, 4.302653),
        (0.975, 4, 2.776445),
        (0.975, 9, 2.262157),
        (0.975, 30, 2.042272),
        (0.995, 10, 3.169273),
        (0.95, 20, 1.724718),
    ],
)
def test_t_quantile_table_values(p: float, df: int, expected: float) -> None:
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-6)


@pytest.mark.parametrize("p", [0.001, 0.1, 0.3, 0.6, 0.9, 0.999, 0.999999])
def test_t_quantile_closed_forms(p: float) -> None:
    # df=1 is Cauchy: tan(pi (p - 1/2)); df=2: (2p-1) / sqrt(2 p (1-p)).
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-9)
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


def test_t_quantile_large_df_tends_to_normal() -> None:
    z = statistics.NormalDist().inv_cdf(0.975)  # 1.959964
    # Cornish-Fisher: t_p(df) ~ z + (z^3 + z) / (4 df) for large df.
    assert t_quantile(0.975, 1e6) == pytest.approx(z + (z**3 + z) / 4e6, abs=1e-8)


def test_t_cdf_roundtrip_and_symmetry() -> None:
    assert t_cdf(0.0, 5) == 0.5
    for df in (1, 3, 7.5, 50):
        for p in (0.01, 0.2, 0.5, 0.77, 0.99):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-12)
        assert t_cdf(-1.3, df) == pytest.approx(1 - t_cdf(1.3, df), abs=1e-15)


def test_t_quantile_rejects_bad_arguments() -> None:
    for p in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="p must be"):
            t_quantile(p, 5)
    with pytest.raises(ValueError, match="df"):
        t_quantile(0.9, 0)


# ---------------------------------------------------------------- Wilson / mean_ci


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # common textbook example
        # Newcombe (1998), Stat Med 17:857, table II, method 3 (score, no correction):
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_published_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_mean_ci_binary_uses_wilson() -> None:
    ci = mean_ci([1] * 8 + [0] * 2)
    assert ci.method == "wilson" and ci.n == 10 and ci.mean == pytest.approx(0.8)
    assert (ci.low, ci.high) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    # All correct: upper bound is exactly 1, never a rounding hair above it.
    assert mean_ci([1.0] * 29).high == 1.0
    assert mean_ci([True, False, True]).method == "wilson"


def test_mean_ci_t_interval_hand_computed() -> None:
    # mean 0.6, sd = sqrt(0.1), se = sqrt(0.1)/sqrt(5) = 0.141421, t(0.975, 4) = 2.776445
    # -> half-width 0.392649 -> (0.207351, 0.992649)
    ci = mean_ci([0.2, 0.4, 0.6, 0.8, 1.0])
    assert ci.method == "t" and ci.n == 5
    assert ci.mean == pytest.approx(0.6)
    assert (ci.low, ci.high) == pytest.approx((0.207351, 0.992649), abs=1e-6)


def test_mean_ci_clamps_only_unit_scores() -> None:
    ci = mean_ci([0.5, 0.7, 0.9])  # raw t interval (0.203, 1.197) is clamped at 1
    assert ci.high == 1.0 and ci.low == pytest.approx(0.203172, abs=1e-6)
    # Scores outside [0, 1]: mean 20, se 10/sqrt(3), t(0.975, 2) = 4.302653 -> +-24.841377
    ci = mean_ci([10, 20, 30])
    assert (ci.low, ci.high) == pytest.approx((-4.841377, 44.841377), abs=1e-6)


def test_mean_ci_confidence_level() -> None:
    narrow, wide = mean_ci([0.1, 0.3, 0.4, 0.8], 0.8), mean_ci([0.1, 0.3, 0.4, 0.8], 0.99)
    assert wide.low < narrow.low < narrow.mean < narrow.high < wide.high
    with pytest.raises(ValueError, match="confidence"):
        mean_ci([0.5], confidence=1.0)


def test_mean_ci_edge_cases() -> None:
    empty = mean_ci([])
    assert empty.n == 0 and math.isnan(empty.mean)
    assert math.isnan(empty.low) and math.isnan(empty.high)
    assert mean_ci([0.3]) == Interval(0.3, 0.3, 0.3, 1, "t")
    one = mean_ci([1])  # Wilson for 1/1: (0.206549, 1)
    assert one.method == "wilson" and one.low == pytest.approx(0.206549, abs=1e-6)
    assert one.high == 1.0
    constant = mean_ci([0.5, 0.5, 0.5])
    assert (constant.low, constant.high) == (0.5, 0.5)


@pytest.mark.parametrize("bad", [[0.5, float("nan")], [float("inf")], [0.5, "x"], [None]])
def test_mean_ci_rejects_non_numbers(bad: list[object]) -> None:
    with pytest.raises(ValueError, match=r"scores\[\d\]"):
        mean_ci(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- percentile


def test_percentile_matches_numpy_linear() -> None:
    # Hand-computed with numpy's default rule: h = (n-1) q/100, interpolate linearly.
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile(list(range(1, 11)), 95) == pytest.approx(9.55)  # h = 8.55
    assert percentile([15, 20, 35, 40, 50], 40) == pytest.approx(29.0)  # h = 1.6
    assert percentile([7.0], 95) == 7.0
    assert math.isnan(percentile([], 50))
    for q in (-1, 101):
        with pytest.raises(ValueError, match="percentile"):
            percentile([1, 2], q)


# ---------------------------------------------------------------- McNemar


def _scores(both: int, b: int, c: int, neither: int) -> tuple[list[int], list[int]]:
    """Build paired 0/1 lists: b = baseline-only right, c = candidate-only right."""
    base = [1] * both + [1] * b + [0] * c + [0] * neither
    cand = [1] * both + [0] * b + [1] * c + [0] * neither
    return base, cand


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (0, 6, 0.03125),
        (1, 6, 0.125),
        (6, 1, 0.125),
        (5, 5, 1.0),
        (0, 0, 1.0),
        (0, 1, 1.0),
        (40, 60, 0.05688793),
    ],  # last: R's binom.test(40, 100)
)
def test_mcnemar_exact_known_values(b: int, c: int, p: float) -> None:
    base, cand = _scores(3, b, c, 2)
    assert mcnemar(base, cand).p_value == pytest.approx(p, rel=1e-7)


def test_mcnemar_matches_exact_fractions() -> None:
    # Exact 2 * P(X <= min(b, c)) with X ~ Bin(b + c, 1/2), in rational arithmetic.
    for b in range(0, 30, 3):
        for c in range(0, 120, 7):
            m, k = b + c, min(b, c)
            exact = min(Fraction(1), Fraction(2 * sum(math.comb(m, j) for j in range(k + 1)), 2**m))
            got = mcnemar(*_scores(0, b, c, 0)).p_value
            assert got == pytest.approx(float(exact), rel=1e-10, abs=1e-300)


def test_mcnemar_large_counts_are_fast_and_tiny() -> None:
    start = time.perf_counter()
    res = mcnemar(*_scores(10, 0, 5000, 10))
    assert time.perf_counter() - start < 1.0
    assert res.p_value == 0.0  # 2 * 2**-5000 underflows; correctly rounded


def test_mcnemar_means_diff_and_newcombe_ci() -> None:
    # Fagerland, Lydersen & Laake (2017), ch. 8, Cavo et al. (2012) table [[59, 6], [16, 80]]:
    # Newcombe square-and-add estimate -0.0621, 95% CI (-0.1186, -0.0046).
    base, cand = _scores(59, 16, 6, 80)
    res = mcnemar(base, cand)
    assert res.method == "mcnemar_exact" and res.n == 161
    assert res.baseline_mean == pytest.approx(75 / 161)
    assert res.candidate_mean == pytest.approx(65 / 161)
    assert res.diff == pytest.approx(-10 / 161)
    assert (res.low, res.high) == pytest.approx((-0.1186, -0.0046), abs=5e-5)
    # No discordant pairs: the interval still has width (Wald would collapse to [0, 0]).
    same = mcnemar(*_scores(5, 0, 0, 5))
    assert same.diff == 0 and same.p_value == 1.0 and same.low < 0 < same.high


def test_mcnemar_rejects_non_binary_and_mismatch() -> None:
    with pytest.raises(ValueError, match=r"0/1 scores.*candidate\[1\]"):
        mcnemar([1, 0], [1, 0.5])
    with pytest.raises(ValueError, match="same examples"):
        mcnemar([1, 0], [1])


# ---------------------------------------------------------------- paired bootstrap


def _noisy(n: int, shift: float, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    base = [rng.uniform(0.2, 0.6) for _ in range(n)]
    cand = [x + shift + rng.gauss(0, 0.1) for x in base]
    return base, cand


def test_bootstrap_identical_lists() -> None:
    scores = [0.1, 0.5, 0.9, 0.3, 0.7]
    res = paired_bootstrap(scores, list(scores), resamples=500)
    assert res.diff == 0 and res.low == 0 and res.high == 0
    assert res.p_value == 1.0 and res.method == "paired_bootstrap"


def test_bootstrap_detects_clear_improvement() -> None:
    base, cand = _noisy(200, 0.3, seed=1)
    res = paired_bootstrap(base, cand)
    assert res.diff == pytest.approx(0.3, abs=0.03)
    assert 0 < res.low < res.diff < res.high
    assert res.p_value < 0.01
    assert res.candidate_mean - res.baseline_mean == pytest.approx(res.diff)


def test_bootstrap_agrees_with_normal_theory() -> None:
    # For n = 400 the bootstrap distribution of the mean is close to normal, so the CI and the
    # p-value should be close to dbar +- 1.96 se and 2 * (1 - Phi(|dbar| / se)).
    base, cand = _noisy(400, 0.01, seed=7)
    d = [c - b for b, c in zip(base, cand, strict=True)]
    se = statistics.stdev(d) / math.sqrt(len(d))
    res = paired_bootstrap(base, cand, resamples=20_000)
    normal = statistics.NormalDist()
    assert res.high - res.low == pytest.approx(2 * 1.959964 * se, rel=0.05)
    assert res.p_value == pytest.approx(2 * (1 - normal.cdf(abs(res.diff) / se)), abs=0.02)
    assert 0.001 < res.p_value < 0.9  # a genuinely uncertain case, not a degenerate one


def test_bootstrap_is_deterministic_by_seed() -> None:
    base, cand = _noisy(100, 0.02, seed=3)
    first = paired_bootstrap(base, cand, resamples=2000, seed=42)
    assert paired_bootstrap(base, cand, resamples=2000, seed=42) == first
    assert paired_bootstrap(base, cand, resamples=2000, seed=43) != first


def test_bootstrap_edge_cases() -> None:
    empty = paired_bootstrap([], [])
    assert empty.n == 0 and math.isnan(empty.diff) and empty.p_value == 1.0
    one = paired_bootstrap([0.2], [0.9], resamples=100)
    assert one.diff == pytest.approx(0.7) and one.p_value == 1.0  # one pair is no evidence
    with pytest.raises(ValueError, match=r"got 2 and 3"):
        paired_bootstrap([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap([0.1], [0.2], resamples=0)


# ---------------------------------------------------------------- compare / gate


def test_compare_dispatches_on_score_type() -> None:
    base, cand = _scores(10, 1, 6, 3)
    assert compare(base, cand).method == "mcnemar_exact"
    assert compare([1.0, 0.0], [0.0, 1.0]).method == "mcnemar_exact"
    res = compare([1, 0.5, 0], [1, 1, 0], resamples=200, seed=1)
    assert res.method == "paired_bootstrap"
    assert res == paired_bootstrap([1, 0.5, 0], [1, 1, 0], resamples=200, seed=1)
    assert compare([], []).p_value == 1.0
    with pytest.raises(ValueError, match="same examples"):
        compare([1, 0], [1])


def _cmp(baseline_mean: float, candidate_mean: float, p: float) -> PairedComparison:
    diff = candidate_mean - baseline_mean
    return PairedComparison(100, baseline_mean, candidate_mean, diff, diff, diff, p, "test")


@pytest.mark.parametrize(
    ("base", "cand", "p", "expected"),
    [
        (0.80, 0.70, 0.01, True),  # big drop, significant
        (0.80, 0.70, 0.20, False),  # big drop, could be noise
        (0.80, 0.79, 0.01, False),  # significant but within tolerance
        (0.80, 0.79, 0.20, False),
        (0.80, 0.90, 0.001, False),  # improvement
        (0.80, 0.75, 0.049, False),  # drop equal to max_regression is tolerated
        (0.80, 0.74, 0.05, False),  # p must be strictly below alpha
        (float("nan"), float("nan"), 1.0, False),  # empty eval set
    ],
)
def test_is_regression_truth_table(base: float, cand: float, p: float, expected: bool) -> None:
    assert is_regression(_cmp(base, cand, p), max_regression=0.05, alpha=0.05) is expected


def test_is_regression_zero_tolerance_and_bad_arguments() -> None:
    assert is_regression(_cmp(0.8, 0.79, 0.01), max_regression=0.0, alpha=0.05)
    with pytest.raises(ValueError, match="alpha"):
        is_regression(_cmp(0.8, 0.7, 0.01), max_regression=0.05, alpha=0.0)
    with pytest.raises(ValueError, match="max_regression"):
        is_regression(_cmp(0.8, 0.7, 0.01), max_regression=-0.1, alpha=0.05)


def test_gate_end_to_end_on_binary_scores() -> None:
    # Candidate loses 20 examples and wins 2 of 200: a 9-point drop, exact p = 2 * 254 / 2**22 ~ 1.2e-4.
    base, cand = _scores(150, 20, 2, 28)
    res = compare(base, cand)
    assert res.diff == pytest.approx(-0.09)
    assert is_regression(res, max_regression=0.02, alpha=0.05)
    assert not is_regression(res, max_regression=0.10, alpha=0.05)
