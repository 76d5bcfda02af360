"""Several evaluations of the same rows side by side: the matrix and the flipped rows.

`promptc compare` evaluates each variant (a program, a model) on the same data and hands
the summaries and records here. Every variant is tested against the first, paired by
row, with `permutation.paired_test` (exact McNemar for 0/1 scores, the sign-flip
permutation test otherwise). A row *flipped* when it passed in one variant and not in
another (failed, or errored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from promptc.evaluation.permutation import paired_test
from promptc.evaluation.records import EvalRecord, EvalSummary, Provenance, Status


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def passed(record: EvalRecord) -> bool:
    """Whether the row passed (an error is not a pass)."""
    return record.status == "pass"


def flipped(a: EvalRecord, b: EvalRecord) -> bool:
    """Passed in one, not in the other."""
    return passed(a) != passed(b)


class MetricCell(_Model):
    """One variant on one metric, and (after the first variant) its paired test against the first."""

    name: str
    mean: float
    low: float
    high: float
    n: int
    diff: float | None = Field(default=None, description="this variant's mean - the first's, on paired rows")
    diff_low: float | None = None
    diff_high: float | None = None
    p_value: float | None = Field(default=None, description="paired test against the first variant")
    method: str | None = None
    paired: int = Field(default=0, description="rows scored in both")
    significant: bool = False


class VariantResult(_Model):
    """One column of the comparison: what ran, its metrics, cost, latency, and flips."""

    name: str
    program: str = Field(description="the spec or artifact evaluated")
    model: str | None = Field(default=None, description="the --model it ran with (None: the spec's)")
    summary: EvalSummary
    metrics: list[MetricCell]
    gained: int = Field(default=0, description="rows it passes that the first variant does not")
    lost: int = Field(default=0, description="rows the first variant passes that it does not")


class CompareCell(_Model):
    """One row's outcome in one variant."""

    status: Status
    score: float | None = None
    prediction: dict[str, Any] | None = None
    error: str | None = None


class CompareRow(_Model):
    """One data row: its inputs and gold once, then each variant's outcome (None: not run)."""

    row: int
    inputs: dict[str, Any]
    gold: dict[str, Any] = Field(default_factory=dict)
    results: list[CompareCell | None]
    flipped: bool = Field(description="passed in some variant and not in another")
    failing: bool = Field(description="did not pass in at least one variant")


class CompareReport(_Model):
    """The `promptc compare` result, and its JSON report file."""

    format: Literal["promptc-compare-report"] = "promptc-compare-report"
    version: Literal[1] = 1
    data: str
    primary: str
    alpha: float
    variants: list[VariantResult]
    rows: list[CompareRow]
    provenance: Provenance | None = None

    @property
    def flipped_rows(self) -> list[CompareRow]:
        return [r for r in self.rows if r.flipped]


@dataclass
class VariantRun:
    """What the job hands over for one variant."""

    name: str
    program: str
    model: str | None
    summary: EvalSummary
    records: list[EvalRecord]


def build_report(runs: Sequence[VariantRun], *, data: str, alpha: float = 0.05) -> CompareReport:
    """The matrix (each variant against the first) and the per-row table."""
    if not runs:
        raise ValueError("nothing to compare")
    first = runs[0]
    variants = [_variant(run, first, alpha) for run in runs]
    return CompareReport(data=data, primary=first.summary.primary, alpha=alpha, variants=variants,
                         rows=_rows(runs))


def _variant(run: VariantRun, first: VariantRun, alpha: float) -> VariantResult:
    base = {r.row: r for r in first.records}
    cells = []
    for m in run.summary.metrics:
        cell = MetricCell(name=m.name, mean=m.mean, low=m.low, high=m.high, n=m.n)
        if run is not first:
            _test(cell, first.records, run.records, alpha)
        cells.append(cell)
    pairs = [(base[r.row], r) for r in run.records if r.row in base]
    return VariantResult(name=run.name, program=run.program, model=run.model, summary=run.summary,
                         metrics=cells, gained=sum(passed(b) and not passed(a) for a, b in pairs),
                         lost=sum(passed(a) and not passed(b) for a, b in pairs))


def _test(cell: MetricCell, first: Sequence[EvalRecord], other: Sequence[EvalRecord], alpha: float) -> None:
    old = {r.row: r.scores[cell.name] for r in first if cell.name in r.scores}
    pairs = [(old[r.row], r.scores[cell.name]) for r in other if cell.name in r.scores and r.row in old]
    if not pairs:
        return
    cmp = paired_test([a for a, _ in pairs], [b for _, b in pairs])
    cell.diff, cell.diff_low, cell.diff_high = cmp.diff, cmp.low, cmp.high
    cell.p_value, cell.method, cell.paired = cmp.p_value, cmp.method, cmp.n
    cell.significant = cmp.p_value < alpha


def _rows(runs: Sequence[VariantRun]) -> list[CompareRow]:
    by_variant = [{r.row: r for r in run.records} for run in runs]
    numbers = sorted({n for records in by_variant for n in records})
    out = []
    for n in numbers:
        got = [records.get(n) for records in by_variant]
        present = [r for r in got if r is not None]
        outcomes = {passed(r) for r in present}
        out.append(CompareRow(row=n, inputs=present[0].inputs, gold=present[0].gold,
                              results=[_cell(r) for r in got], flipped=len(outcomes) > 1,
                              failing=False in outcomes))
    return out


def _cell(r: EvalRecord | None) -> CompareCell | None:
    if r is None:
        return None
    return CompareCell(status=r.status, score=r.score, prediction=r.prediction, error=r.error)
