"""The paired permutation (sign-flip) test, and the paired test `promptc compare` uses.

Under H0 (the two variants are exchangeable on each row) every per-row difference
d_i = candidate_i - baseline_i is as likely to have the other sign, so the null
distribution of sum(d) is that of sum(+-d_i). The two-sided p-value is the share of sign
assignments whose |sum| is at least the observed |sum|: enumerated exactly when at most
`EXACT_MAX` differences are non-zero, else estimated from random assignments with the +1
correction (p > 0 with finite resamples; Phipson & Smyth 2010). Unlike the shifted
bootstrap it assumes nothing about the shape of the differences and does not become
anti-conservative at small n.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress

from promptc.evaluation.stats import PairedComparison, _is_binary, _pair, mcnemar, paired_bootstrap

EXACT_MAX = 16  # 2**16 sign assignments: exact and still instant


# '0'/'1' characters of a mask's binary form -> 0/1 bytes, the selectors of itertools.compress.
_BITS = bytes.maketrans(b"01", b"\x00\x01")


def _flipped_sums(d: Sequence[float], masks: Iterable[int]) -> Iterator[float]:
    # Flipping the signs of a subset S changes the sum to total - 2 * sum(S); the subset is
    # picked in C (compress over the mask's bits), not by a Python loop per difference.
    total, fmt = math.fsum(d), f"0{len(d)}b"
    for mask in masks:
        yield total - 2.0 * sum(compress(d, format(mask, fmt).encode().translate(_BITS)))


def _tail_exact(d: Sequence[float], observed: float) -> float:
    n = len(d)
    return sum(abs(s) >= observed for s in _flipped_sums(d, range(1 << n))) / (1 << n)


def _tail_sampled(d: Sequence[float], observed: float, resamples: int, seed: int) -> float:
    rng = random.Random(seed)
    masks = (rng.getrandbits(len(d)) for _ in range(resamples))
    extreme = sum(abs(s) >= observed for s in _flipped_sums(d, masks))
    return (extreme + 1) / (resamples + 1)


def paired_permutation_p(baseline: Sequence[float], candidate: Sequence[float], *,
                         resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test (1.0 with no data)."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples!r}")
    base, cand = _pair(baseline, candidate)
    d = [c - b for b, c in zip(base, cand, strict=True)]
    d = [x for x in d if x != 0.0]  # a zero difference is the same under either sign
    if not d:
        return 1.0
    # Tolerance so that sums equal to the observed one up to rounding count as extreme.
    observed = abs(math.fsum(d)) - 1e-9 * max(1.0, max(abs(x) for x in d))
    if len(d) <= EXACT_MAX:
        return _tail_exact(d, observed)
    return min(1.0, _tail_sampled(d, observed, resamples, seed))


def paired_test(baseline: Sequence[float], candidate: Sequence[float], *, resamples: int = 10_000,
                seed: int = 0, confidence: float = 0.95) -> PairedComparison:
    """McNemar's exact test for 0/1 scores; otherwise the sign-flip permutation p-value with
    the paired bootstrap's percentile interval of the mean difference."""
    base, cand = _pair(baseline, candidate)
    if _is_binary(base) and _is_binary(cand):
        return mcnemar(base, cand, confidence=confidence)
    boot = paired_bootstrap(base, cand, resamples=resamples, seed=seed, confidence=confidence)
    p = paired_permutation_p(base, cand, resamples=resamples, seed=seed)
    return PairedComparison(boot.n, boot.baseline_mean, boot.candidate_mean, boot.diff, boot.low, boot.high,
                            p, "paired_permutation")
