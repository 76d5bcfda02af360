"""A small categorical TPE (Tree-structured Parzen Estimator), MIPRO's search strategy.

Why not Optuna: every parameter MIPRO searches is categorical (which instruction and
which demo set, per step), and for categoricals TPE reduces to counting — a few dozen
lines. Optuna would add a dependency that pulls in SQLAlchemy and Alembic for storage
we do not need, and its sampler state is harder to replay exactly on --resume.

The algorithm (Bergstra et al. 2011; Optuna's independent TPESampler for categoricals):

1. the first `n_startup` suggestions are uniform random;
2. then the history is split at the `gamma` quantile of scores into good (top) and
   bad (the rest) trials;
3. per parameter, l(x) and g(x) are categorical Parzen estimators: the counts of each
   choice among the good / bad trials plus a prior of `prior_weight` per choice
   (add-one smoothing by default, so no choice ever gets probability zero);
4. `n_candidates` configurations are sampled from l, and the one maximizing
   l(x) / g(x) — TPE's expected-improvement criterion — is suggested.

Scores are maximized. Only `suggest` draws from the seeded `random.Random`, so replaying
the same sequence of `suggest`/`tell` calls reproduces the same suggestions: that is
how MIPRO rebuilds the search after a crash.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

Params = dict[str, int]


class CategoricalTPE:
    """Suggests configurations of categorical parameters, each an index into its choices."""

    def __init__(self, space: Mapping[str, int], *, seed: int | str = 0, n_startup: int = 10,
                 gamma: float = 0.25, n_candidates: int = 24, prior_weight: float = 1.0):
        bad = [name for name, size in space.items() if size < 1]
        if bad:
            raise ValueError(f"parameters without choices: {', '.join(bad)}")
        if not 0 < gamma < 1:
            raise ValueError("gamma must be between 0 and 1")
        if prior_weight <= 0:
            raise ValueError("prior_weight must be positive (it keeps every choice possible)")
        self.space = dict(space)
        self.n_startup = n_startup
        self.gamma = gamma
        self.n_candidates = max(1, n_candidates)
        self.prior_weight = prior_weight
        self.rng = random.Random(seed)
        self.history: list[tuple[Params, float]] = []

    def tell(self, params: Mapping[str, int], score: float) -> None:
        """Record the score of a configuration (in the order trials finished)."""
        self.history.append(({k: int(params[k]) for k in self.space}, float(score)))

    def suggest(self) -> Params:
        """The next configuration to try."""
        if len(self.history) < self.n_startup or len(self.history) < 2:
            return {name: self.rng.randrange(size) for name, size in self.space.items()}
        good, bad = self.split()
        l_dist = {name: self._parzen(name, good) for name in self.space}
        g_dist = {name: self._parzen(name, bad) for name in self.space}
        best: Params | None = None
        best_ratio = -math.inf
        for _ in range(self.n_candidates):
            candidate = {name: self.rng.choices(range(len(w)), weights=w)[0] for name, w in l_dist.items()}
            ratio = sum(math.log(l_dist[n][c]) - math.log(g_dist[n][c]) for n, c in candidate.items())
            if ratio > best_ratio:  # ties keep the first sampled: deterministic
                best, best_ratio = candidate, ratio
        assert best is not None
        return best

    def split(self) -> tuple[list[Params], list[Params]]:
        """(good, bad): the top `gamma` share of the history (at least one) and the rest."""
        ranked = sorted(range(len(self.history)), key=lambda i: (-self.history[i][1], i))
        n_good = min(len(ranked) - 1, max(1, math.ceil(self.gamma * len(ranked))))
        return ([self.history[i][0] for i in ranked[:n_good]],
                [self.history[i][0] for i in ranked[n_good:]])

    def _parzen(self, name: str, trials: Sequence[Params]) -> list[float]:
        weights = [self.prior_weight] * self.space[name]
        for params in trials:
            weights[params[name]] += 1.0
        total = sum(weights)
        return [w / total for w in weights]
