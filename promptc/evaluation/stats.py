"""Statistics behind `promptc eval` and its CI gate.

Pure functions on lists of floats, standard library only: promptc must not depend on
numpy/scipy, so the Student-t quantile is computed here from the regularized
incomplete beta function.

Methods (see each docstring for details):
  - mean_ci           Wilson score interval for 0/1 scores, Student-t interval otherwise
  - paired_bootstrap  percentile CI of the mean difference; p-value from the shifted
                      (null-centred) bootstrap, with the +1 correction
  - mcnemar           exact two-sided binomial test on the discordant pairs, always exact;
                      Newcombe (1998, method 10) interval for the difference
  - compare           McNemar for 0/1 scores, paired bootstrap otherwise
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

_NAN = float("nan")


@dataclass(frozen=True)
class Interval:
    """A mean with a confidence interval; `method` is "wilson", "t" or "none" (n=0)."""

    mean: float
    low: float
    high: float
    n: int
    method: str


@dataclass(frozen=True)
class PairedComparison:
    """Candidate vs baseline on the same examples; `diff` = candidate - baseline."""

    n: int
    baseline_mean: float
    candidate_mean: float
    diff: float
    low: float
    high: float
    p_value: float
    method: str


def _floats(values: Sequence[float], name: str) -> list[float]:
    out: list[float] = []
    for i, v in enumerate(values):
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{i}] is not a number: {v!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"{name}[{i}] is not finite: {v!r}")
        out.append(x)
    return out


def _pair(baseline: Sequence[float], candidate: Sequence[float]) -> tuple[list[float], list[float]]:
    base = _floats(baseline, "baseline")
    cand = _floats(candidate, "candidate")
    if len(base) != len(cand):
        raise ValueError(
            "baseline and candidate must score the same examples in the same order "
            f"(got {len(base)} and {len(cand)} scores)"
        )
    return base, cand


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def _is_binary(xs: Sequence[float]) -> bool:
    return all(x == 0.0 or x == 1.0 for x in xs)


def _z(confidence: float) -> float:
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction for I_x(a, b), evaluated with the modified Lentz method.
    # Converges in O(sqrt(max(a, b))) terms when x < (a+1)/(a+b+2).
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1.0) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1.0)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= c * d
        if abs(c * d - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta did not converge (a={a}, b={b}, x={x})")


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    # Use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) where the fraction converges fast.
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_upper_tail(t: float, df: float) -> float:
    # P(T > t) for t >= 0, computed directly (not as 1 - cdf) to keep small tails accurate.
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution with `df` > 0 degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be positive, got {df!r}")
    tail = _t_upper_tail(abs(t), df)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t (bisection on the CDF; accurate to ~1e-12 relative)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p!r}")
    if df <= 0:
        raise ValueError(f"df must be positive, got {df!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while _t_upper_tail(hi, df) > tail:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi) or hi - lo <= 1e-15 * hi:
            break
        if _t_upper_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when n == 0."""
    _check_confidence(confidence)
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return _NAN, _NAN
    z = _z(confidence)
    p = successes / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    # Rounding can push the bounds a hair outside [0, 1] at p = 0 or 1.
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_ci(scores: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of `scores` with a two-sided confidence interval.

    0/1 scores get the Wilson score interval (well-behaved near 0 and 1, unlike Wald);
    anything else gets the Student-t interval, clamped to [0, 1] when every score lies
    in [0, 1]. n=0 gives nan everywhere; n=1 gives low = high = mean for the t method.
    """
    _check_confidence(confidence)
    xs = _floats(scores, "scores")
    n = len(xs)
    if n == 0:
        return Interval(_NAN, _NAN, _NAN, 0, "none")
    mean = math.fsum(xs) / n
    if _is_binary(xs):
        low, high = wilson_interval(round(math.fsum(xs)), n, confidence)
        return Interval(mean, low, high, n, "wilson")
    if n == 1:
        low = high = mean
    else:
        half = t_quantile(0.5 + confidence / 2.0, n - 1) * statistics.stdev(xs) / math.sqrt(n)
        low, high = mean - half, mean + half
    if all(0.0 <= x <= 1.0 for x in xs):
        low, high = max(0.0, low), min(1.0, high)
    return Interval(mean, low, high, n, "t")


def percentile(values: Sequence[float], q: float) -> float:
    """q-th percentile (q in [0, 100]) with linear interpolation, like numpy's default.

    Returns nan for an empty sequence (e.g. latency of a run with no rows).
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be in [0, 100], got {q!r}")
    xs = sorted(_floats(values, "values"))
    if not xs:
        return _NAN
    h = (len(xs) - 1) * q / 100.0
    i = min(int(h), len(xs) - 1)
    frac = h - i
    if frac == 0.0:
        return xs[i]
    return xs[i] + (xs[i + 1] - xs[i]) * frac


def _empty(method: str) -> PairedComparison:
    # No data is no evidence: p = 1 so an empty eval set can never trip the gate.
    return PairedComparison(0, _NAN, _NAN, _NAN, _NAN, _NAN, 1.0, method)


def paired_bootstrap(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedComparison:
    """Paired bootstrap over examples (scores paired by position).

    Only the per-example differences d_i = candidate_i - baseline_i matter: each of the
    `resamples` (B) resamples draws n of them with replacement, costing O(B * n). The CI is
    the percentile interval of the resampled mean differences. The two-sided p-value uses
    the shifted bootstrap under H0 (Efron & Tibshirani 1993, ch. 16): the resampled means
    are centred on the observed mean dbar and p = (1 + #{|mean* - dbar| >= |dbar|}) / (B + 1)
    (the +1 keeps p > 0 with finite B; Davison & Hinkley 1997, ch. 4). With n < 2 there is
    no variance to learn from, so p = 1. Like any bootstrap, it is anti-conservative for
    very small n (say < 20). Deterministic for a given seed.
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    base, cand = _pair(baseline, candidate)
    n = len(base)
    if n == 0:
        return _empty("paired_bootstrap")
    d = [c - b for b, c in zip(base, cand, strict=True)]
    dbar = math.fsum(d) / n
    choices = random.Random(seed).choices
    # random.choices + builtin sum is the fastest pure-Python resampler (~0.5 s for
    # 10k x 1000); per-element Python loops are 2-3x slower.
    means = sorted(sum(choices(d, k=n)) / n for _ in range(resamples))
    alpha = 1.0 - confidence
    low = percentile(means, 100.0 * alpha / 2.0)
    high = percentile(means, 100.0 * (1.0 - alpha / 2.0))
    if n < 2:
        p_value = 1.0
    else:
        # Tolerance so that resamples equal to the data up to summation order count as
        # ties (extreme), and rounding-level dbar is treated as no difference.
        tol = 1e-9 * max(1.0, max(abs(x) for x in d))
        threshold = abs(dbar) - tol
        extreme = sum(1 for m in means if abs(m - dbar) >= threshold)
        p_value = min(1.0, (extreme + 1) / (resamples + 1))
    base_mean, cand_mean = math.fsum(base) / n, math.fsum(cand) / n
    return PairedComparison(n, base_mean, cand_mean, dbar, low, high, p_value, "paired_bootstrap")


def _binom_two_sided(b: int, c: int) -> float:
    # Exact two-sided sign test: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2).
    # Summed from the largest term downwards, scaled in log space, so any size is accurate
    # to ~1e-12 relative without huge integers (and stops once terms are negligible).
    m, k = b + c, min(b, c)
    if 2 * k >= m:
        return 1.0
    log_top = math.lgamma(m + 1) - math.lgamma(k + 1) - math.lgamma(m - k + 1) - m * math.log(2)
    total, term = 1.0, 1.0
    for j in range(k, 0, -1):
        term *= j / (m - j + 1)  # ratio C(m, j-1) / C(m, j)
        total += term
        if term < 1e-17 * total:
            break
    return min(1.0, 2.0 * math.exp(log_top) * total)


def _newcombe_paired(a: int, b: int, c: int, d: int, confidence: float) -> tuple[float, float]:
    # Newcombe (1998) method 10 ("square-and-add" of Wilson intervals with the
    # continuity-adjusted correlation phi), as in Fagerland, Lydersen & Laake (2017) ch. 8.
    # a = both right, c = only candidate right, b = only baseline right, d = both wrong;
    # the difference is p1 - p2 = candidate - baseline.
    n = a + b + c + d
    p1, p2 = (a + c) / n, (a + b) / n
    l1, u1 = wilson_interval(a + c, n, confidence)
    l2, u2 = wilson_interval(a + b, n, confidence)
    margins = (a + c) * (b + d) * (a + b) * (c + d)
    cross = a * d - b * c
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    else:
        phi = cross / math.sqrt(margins)
    theta = p1 - p2
    dl = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du = (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2
    return max(-1.0, theta - math.sqrt(max(0.0, dl))), min(1.0, theta + math.sqrt(max(0.0, du)))


def mcnemar(
    baseline: Sequence[float], candidate: Sequence[float], *, confidence: float = 0.95
) -> PairedComparison:
    """McNemar's test for paired 0/1 scores.

    The p-value is always the exact two-sided binomial test on the discordant pairs
    (b = baseline right & candidate wrong, c = the reverse), never the chi-squared
    approximation. The CI of the difference is Newcombe's (1998) method 10 interval,
    which stays sensible for small or zero discordant counts where Wald collapses.
    """
    _check_confidence(confidence)
    base, cand = _pair(baseline, candidate)
    for name, xs in (("baseline", base), ("candidate", cand)):
        for i, x in enumerate(xs):
            if x not in (0.0, 1.0):
                raise ValueError(f"mcnemar needs 0/1 scores, but {name}[{i}] = {x!r}")
    n = len(base)
    if n == 0:
        return _empty("mcnemar_exact")
    cells = Counter(zip(base, cand, strict=True))
    both, b, c = cells[(1.0, 1.0)], cells[(1.0, 0.0)], cells[(0.0, 1.0)]
    low, high = _newcombe_paired(both, b, c, n - both - b - c, confidence)
    p_value = _binom_two_sided(b, c)
    base_mean, cand_mean = (both + b) / n, (both + c) / n
    return PairedComparison(
        n, base_mean, cand_mean, (c - b) / n, low, high, p_value, "mcnemar_exact"
    )


def compare(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedComparison:
    """McNemar when every score is 0 or 1, otherwise the paired bootstrap."""
    base, cand = _pair(baseline, candidate)
    if _is_binary(base) and _is_binary(cand):
        return mcnemar(base, cand, confidence=confidence)
    return paired_bootstrap(base, cand, resamples=resamples, seed=seed, confidence=confidence)


def is_regression(cmp: PairedComparison, *, max_regression: float, alpha: float) -> bool:
    """True only when the mean dropped by more than `max_regression` AND p < `alpha`.

    Both are required: a significant but tiny drop is tolerated, and so is a large drop
    that could be noise. nan means (no data) never count as a regression.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if not max_regression >= 0.0:
        raise ValueError(f"max_regression must be >= 0, got {max_regression!r}")
    drop = cmp.baseline_mean - cmp.candidate_mean
    # The slack keeps a drop of exactly `max_regression` (0.80 -> 0.75 vs 0.05, which is
    # 0.05000000000000004 in floats) on the tolerated side.
    return drop > max_regression + 1e-12 and cmp.p_value < alpha
