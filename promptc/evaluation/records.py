"""Plain data that an evaluation produces and the report writers consume.

The evaluator fills these in; `promptc.evaluation.reports` turns them into JSON, CSV,
Markdown, HTML and JUnit files. Nothing here knows how scores were computed, so the
writers can be tested (and reused, e.g. to re-render an old JSON report) on their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from promptc.lm.base import Usage

Status = Literal["error", "fail", "pass", "scored"]


class _Model(BaseModel):
    # A misspelt field name from the evaluator should fail loudly, not vanish from reports.
    model_config = ConfigDict(extra="forbid")


class EvalRecord(_Model):
    """The outcome of one example: what went in, what came out, and how it scored."""

    row: int = Field(description="1-based line number in the data file")
    inputs: dict[str, Any]
    gold: dict[str, Any] = Field(default_factory=dict, description="the example's label fields")
    prediction: dict[str, Any] | None = Field(
        default=None, description="the program's outputs; None when the program failed")
    scores: dict[str, float] = Field(default_factory=dict,
                                     description="metric name -> score in [0, 1], metrics that ran")
    score: float | None = Field(default=None, description="the primary metric's score")
    passed: bool | None = Field(default=None, description="primary score >= its threshold")
    feedback: dict[str, str] = Field(default_factory=dict,
                                     description="metric name -> feedback, where a metric gave it")
    error: str | None = Field(default=None, description="program or metric error, if any")
    usage: Usage = Field(default_factory=Usage)
    latency: float = Field(default=0.0, description="seconds")
    violations: list[str] = Field(default_factory=list,
                                  description="constraints (assert/suggest) still failing when the row ended")
    hard_violations: int = 0

    @property
    def status(self) -> Status:
        """'error', 'fail', 'pass', or 'scored' (no threshold to pass or fail against)."""
        if self.error is not None or self.score is None:
            return "error"
        if self.passed is None:
            return "scored"
        return "pass" if self.passed else "fail"


class MetricSummary(_Model):
    """One metric over the whole set: mean with its 95% confidence interval."""

    name: str
    weight: float
    primary: bool
    mean: float
    low: float
    high: float
    n: int = Field(description="examples this metric scored")


class Comparison(_Model):
    """The primary metric against a baseline run, paired by example."""

    baseline: str = Field(description="what was compared against (a report or program path)")
    n: int = Field(description="paired examples")
    baseline_mean: float
    candidate_mean: float
    diff: float = Field(description="candidate_mean - baseline_mean")
    low: float = Field(description="95% CI of diff, lower end")
    high: float = Field(description="95% CI of diff, upper end")
    p_value: float
    method: str = Field(description="e.g. 'paired bootstrap'")
    regression: bool


class Endpoint(_Model):
    """One LM a run used: where it was sent (the host only, never a key or path)."""

    name: str = Field(description="the LM's name in the spec (`default`, `judge`, ...)")
    model: str
    host: str = Field(description="endpoint host[:port], or 'offline' for the built-in LM")
    priced: bool = Field(default=True, description="the spec's `prices:` has this model (else cost shows $0)")


class Provenance(_Model):
    """What produced a result: the models and endpoints, the promptc version, when."""

    models: list[Endpoint] = Field(default_factory=list)
    promptc_version: str
    timestamp: str = Field(description="ISO 8601, UTC, when the run finished")

    def models_text(self) -> str:
        """'fake-model @ 127.0.0.1:8080' (one per LM, comma-separated)."""
        return ", ".join(f"{e.model} @ {e.host}" + (f" ({e.name})" if e.name != "default" else "")
                         for e in self.models)


class EvalSummary(_Model):
    """Totals of one `promptc eval` run, and the verdict that decides its exit code."""

    spec: str = Field(description="the spec path (or name) that was evaluated")
    program: str | None = Field(default=None, description="program artifact path, if one was used")
    data: str = Field(description="the labelled data file")
    n: int
    errors: int
    primary: str = Field(description="the primary metric's name")
    mean: float
    low: float
    high: float
    threshold: float | None = Field(default=None, description="the gate on the primary mean")
    passed_gate: bool
    metrics: list[MetricSummary]
    weighted_mean: float | None = None
    usage: Usage = Field(default_factory=Usage)
    latency_p50: float
    latency_p95: float
    wall_seconds: float
    comparison: Comparison | None = None
    soft_violations: int = Field(default=0, description="suggest constraints still failing, over all rows")
    hard_violations: int = Field(default=0, description="assert constraints that failed rows")
    exit_code: int
    provenance: Provenance | None = Field(default=None, description="models, endpoints, version, time")


class EvalReport(_Model):
    """The JSON report file: a summary and every record, versioned for readers."""

    format: Literal["promptc-eval-report"] = "promptc-eval-report"
    version: Literal[1] = 1
    summary: EvalSummary
    records: list[EvalRecord]
