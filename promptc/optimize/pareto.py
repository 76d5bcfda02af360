"""GEPA's candidate pool: the per-instance Pareto front and the system-aware merge.

Every accepted candidate is scored on the same validation rows. For each row, the
candidates with the best score on it form that row's front; a candidate that is on some
front, and is not covered everywhere by others, is kept (Agrawal et al. 2025, §3.2,
"Pareto-based candidate selection"). Parents are drawn from the kept ones with probability
proportional to the number of rows they are best on, so a candidate that alone solves a
few rows keeps being explored instead of the search collapsing onto one global best.

Merge (§3.3, "system-aware merge"): two candidates on the front that descend from a common
ancestor, and changed *different* parts since, are combined part by part — each predictor's
instruction and each predictor's demos from the side that changed it (from the better of
the two if both did). GEPA merges whole predictors; promptc evolves demos too, so a part is
finer: one line of descent may have found the instruction, another the demos.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from promptc.core.program import PredictorState


@dataclass
class Candidate:
    """A full program state in the pool, with its validation scores and its lineage."""

    id: int
    state: dict[str, PredictorState]
    val_scores: list[float]  # per validation row (an error row counts 0)
    parents: tuple[int, ...] = ()
    trial: int = 0  # the trial that scored it on the validation rows
    next_move: int = 0  # round-robin position over (predictor, mutation) pairs
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return sum(self.val_scores) / len(self.val_scores) if self.val_scores else 0.0


def pareto_ids(pool: Sequence[Candidate]) -> list[int]:
    """The non-dominated candidates: on some row's front and not covered by others everywhere."""
    if not pool:
        return []
    rows = len(pool[0].val_scores)
    fronts: list[set[int]] = []
    for k in range(rows):
        best = max(c.val_scores[k] for c in pool)
        fronts.append({c.id for c in pool if c.val_scores[k] == best})
    by_id = {c.id: c for c in pool}
    # Weakest first, as GEPA does, so of two equivalent candidates the better one survives.
    alive = sorted(set().union(*fronts) if fronts else {c.id for c in pool}, key=lambda i: (by_id[i].mean, -i))
    changed = True
    while changed:
        changed = False
        for cid in alive:
            others = set(alive) - {cid}
            if all(front & others for front in fronts if cid in front):
                alive.remove(cid)
                changed = True
                break
    return sorted(alive) or [max(pool, key=lambda c: (c.mean, -c.id)).id]


def select_parent(pool: Sequence[Candidate], rng: random.Random) -> Candidate:
    """A parent from the Pareto front, drawn by how many rows each candidate is best on."""
    alive = set(pareto_ids(pool))
    rows = len(pool[0].val_scores)
    counts: Counter[int] = Counter()
    for k in range(rows):
        best = max(c.val_scores[k] for c in pool)
        counts.update(c.id for c in pool if c.id in alive and c.val_scores[k] == best)
    ids = sorted(alive)
    weights = [max(counts[i], 0) for i in ids]
    if sum(weights) == 0:
        weights = [1] * len(ids)
    chosen = rng.choices(ids, weights=weights, k=1)[0]
    return next(c for c in pool if c.id == chosen)


def ancestors(pool: Sequence[Candidate], cid: int) -> set[int]:
    by_id = {c.id: c for c in pool}
    seen: set[int] = set()
    todo = list(by_id[cid].parents)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(by_id[p].parents)
    return seen


def merge_options(pool: Sequence[Candidate], tried: set[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """(i, j, ancestor) triples worth merging: both on the front, neither descends from the
    other, the ancestor is no better than either, and the merge takes something from each side
    (a predictor one changed and the other kept): a state not in the pool yet."""
    by_id = {c.id: c for c in pool}
    front = pareto_ids(pool)
    options = []
    for x, i in enumerate(front):
        for j in front[x + 1:]:
            anc_i, anc_j = ancestors(pool, i), ancestors(pool, j)
            if i in anc_j or j in anc_i:
                continue
            for a in sorted(anc_i & anc_j):
                if (i, j, a) in tried:
                    continue
                ci, cj, ca = by_id[i], by_id[j], by_id[a]
                if ca.mean > min(ci.mean, cj.mean):
                    continue
                merged = merged_state(ci, cj, ca)
                if all(merged != c.state for c in pool):
                    options.append((i, j, a))
    return options


def merged_state(i: Candidate, j: Candidate, a: Candidate) -> dict[str, PredictorState]:
    """Per predictor and per part (instruction, demos): the side that changed it since the
    ancestor, the better side if both did. Parts, not whole predictors, so a one-step program
    can still combine one line's instruction with another line's demos."""
    state = {}
    for name, base in a.state.items():
        si, sj = i.state.get(name, base), j.state.get(name, base)
        better_i = i.mean >= j.mean
        state[name] = PredictorState(instructions=_pick(si.instructions, sj.instructions, base.instructions, better_i),
                                     demos=_pick(si.demos, sj.demos, base.demos, better_i))
    return state


def _pick(x: Any, y: Any, base: Any, x_better: bool) -> Any:
    if x == y or y == base:
        return x
    if x == base:
        return y
    return x if x_better else y
