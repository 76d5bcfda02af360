"""Traces: what each step of a program saw, said and cost, per example.

Optimizers bootstrap demos from traces (a successful run's intermediate steps become
demos for those steps), so traces are plain, serializable, first-class records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from promptc.lm.base import Message, Usage


class TraceStep(BaseModel):
    """One module call inside a program run."""

    step: str
    module: str
    predictor: str | None = None  # the tunable predictor that made this LM call (None: no LM call)
    inputs: dict[str, Any]
    outputs: dict[str, Any] = Field(default_factory=dict)
    messages: list[Message] = Field(default_factory=list)
    completion: str | None = None
    usage: Usage = Field(default_factory=Usage)
    error: str | None = None
    attempts: int = 1  # 2 when the reply had to be re-asked after a parse failure
    iteration: int | None = None  # the loop iteration (0-based) this call ran in
    branch: str | None = None  # the branch case taken, as 'BRANCH[i]'
    violations: list[dict[str, Any]] = Field(default_factory=list)  # constraints still failing at the end
    rejected: bool = False  # a sample its module did not keep (best_of_n, refine): never a demo


class Trace(BaseModel):
    """The ordered steps of one program run."""

    steps: list[TraceStep] = Field(default_factory=list)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for s in self.steps:
            total.add(s.usage)
        return total

    def for_step(self, name: str) -> list[TraceStep]:
        return [s for s in self.steps if s.step == name]
