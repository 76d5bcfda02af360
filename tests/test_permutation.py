"""The paired sign-flip permutation test against values worked out by hand."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from promptc.evaluation.permutation import paired_permutation_p, paired_test


def exact_by_brute_force(d: list[float]) -> float:
    observed = abs(sum(d))
    sums = [abs(sum(s * x for s, x in zip(signs, d, strict=True))) for signs in itertools.product((1, -1), repeat=len(d))]
    return sum(s >= observed - 1e-9 for s in sums) / len(sums)


@pytest.mark.parametrize(("d", "p"), [
    ([1.0, 2.0, 3.0], 2 / 8),            # sums +-1 +-2 +-3: only +6 and -6 reach 6
    ([0.5] * 5, 2 / 32),                 # all same sign: the two extreme assignments
    ([0.0, 0.5, 0.0, 0.5], 2 / 4),       # zeros drop out: two differences left
    ([1.0, -1.0], 1.0),                  # observed sum 0: every assignment is as extreme
    ([], 1.0),
])
def test_exact_known_values(d, p):
    assert paired_permutation_p([0.0] * len(d), d) == pytest.approx(p)


def test_exact_matches_brute_force():
    rng = random.Random(7)
    for _ in range(5):
        d = [round(rng.uniform(-1, 1), 2) for _ in range(10)]
        base = [rng.random() for _ in d]
        assert paired_permutation_p(base, [b + x for b, x in zip(base, d, strict=True)]) == pytest.approx(
            exact_by_brute_force(d), abs=1e-12)


def test_sampled_tail_matches_the_binomial():
    # 20 differences of +1 and 10 of -1: sum 10; under H0 the sum is 2K - 30, K ~ Bin(30, 1/2).
    d = [1.0] * 20 + [-1.0] * 10
    exact = 2 * sum(math.comb(30, k) for k in range(11)) / 2**30
    got = paired_permutation_p([0.0] * 30, d, resamples=20_000, seed=1)
    assert got == pytest.approx(exact, abs=0.01) and exact == pytest.approx(0.0987, abs=1e-4)
    # All 40 differences positive: no random assignment reaches it; p is the +1 floor.
    assert paired_permutation_p([0.0] * 40, [0.3] * 40, resamples=999) == 1 / 1000


def test_paired_test_picks_mcnemar_for_pass_fail_and_permutation_otherwise():
    assert paired_test([1, 0, 1, 1], [1, 1, 0, 1]).method == "mcnemar_exact"
    cmp = paired_test([0.2, 0.4, 0.5], [0.5, 0.9, 1.0])
    assert cmp.method == "paired_permutation" and cmp.p_value == pytest.approx(2 / 8)
    assert cmp.diff == pytest.approx((0.3 + 0.5 + 0.5) / 3) and cmp.low <= cmp.diff <= cmp.high
    with pytest.raises(ValueError):
        paired_permutation_p([1.0], [1.0, 2.0])
