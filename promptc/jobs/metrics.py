"""Which metrics a job scores with, and the baseline an evaluation compares against."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptc.core.program import Program
from promptc.errors import Location, SpecError, UsageError
from promptc.evaluation.records import EvalRecord
from promptc.jobs.program import LoadedProgram
from promptc.metrics.config import (
    MetricBase,
    MetricConfig,
    NamedMetric,
    build_metrics,
    parse_metric,
)
from promptc.metrics.judge import JudgeRunner
from promptc.runner.jsonl import iter_jsonl
from promptc.runner.source import RowSource

# A metric as a caller names it: "exact_match", "python:mod:fn", a config dict or a MetricConfig.
MetricLike = str | Mapping[str, Any] | MetricConfig


def default_field(program: Program) -> str:
    """The output a metric scores when it names none: the last non-reasoning output."""
    names = [f.name for f in program.output_fields if f.name != "reasoning"]
    return names[-1] if names else program.output_fields[-1].name


def _default_config(program: Program) -> MetricConfig:
    field = next(f for f in program.output_fields if f.name == default_field(program))
    kind = {"enum": "label_accuracy", "float": "numeric_match", "int": "numeric_match",
            "json": "json_valid"}.get(field.type.kind, "exact_match")
    return parse_metric({"type": kind})


def _config(metric: MetricLike) -> MetricConfig:
    if isinstance(metric, MetricBase):
        return metric  # type: ignore[return-value]  # every variant of the MetricConfig union
    if isinstance(metric, str):
        try:
            if metric.startswith("python:"):
                return parse_metric({"python": metric.removeprefix("python:")})
            return parse_metric({"type": metric})
        except ValueError as exc:
            raise UsageError(f"--metric {metric}: {_first_line(exc)}") from None
    try:
        return parse_metric(dict(metric))
    except ValueError as exc:
        raise UsageError(f"metric {dict(metric)}: {_first_line(exc)}") from None


def metric_configs(source: LoadedProgram, metrics: Sequence[MetricLike] | None) -> list[MetricConfig]:
    """The given metrics, else the spec's `metric:` block (or the artifact's), else a default
    by output type."""
    if metrics:
        return [_config(m) for m in metrics]
    declared: Any = source.spec.document.metric if source.spec else source.metrics
    if declared is None:
        return [_default_config(source.program)]
    return list(declared) if isinstance(declared, list) else [declared]


def resolve_metrics(source: LoadedProgram, metrics: Sequence[MetricLike] | None,
                    judge: JudgeRunner | None = None, program: Program | None = None) -> list[NamedMetric]:
    """Built metrics; a problem in the spec's block is reported at its location.

    `program` (default: the source's) gives the LMs an `llm_judge` grades with.
    """
    program = program or source.program
    configs = metric_configs(source, metrics)
    try:
        return build_metrics(configs, default_field=default_field(program),
                             judge=judge or JudgeRunner(program.lms))
    except ValueError as exc:
        loaded = source.spec
        if metrics or loaded is None:
            raise UsageError(f"{'--metric' if metrics else source.label}: {_first_line(exc)}") from None
        loc = loaded.positions.locate(("metric",), file=loaded.file)
        raise SpecError([(Location(loc.file, loc.line, loc.column, "metric"), str(exc))]) from None


def _first_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)  # pydantic: its first line only says "1 validation error"
    if callable(errors) and errors():
        return str(errors()[0].get("msg", exc))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_baseline(path: Path, source: LoadedProgram, metrics: list[NamedMetric], data: RowSource,
                  limit: int | None) -> list[EvalRecord]:
    """Records to compare with: an earlier `--output` file, or an artifact evaluated now."""
    if path.suffix == ".jsonl":
        return _read_records(path)
    from promptc.artifacts.program_file import apply_artifact, load_artifact
    from promptc.evaluation.evaluator import EvalJob

    program = apply_artifact(source.program, load_artifact(path))
    job = EvalJob(program=program, metrics=metrics, data=data, limit=limit, concurrency=source.concurrency)
    job.prepare()
    return asyncio.run(job.run())


def _read_records(path: Path) -> list[EvalRecord]:
    records = []
    for line in iter_jsonl(path):
        if line.error:
            raise UsageError(f"{path}:{line.number}: {line.error}")
        try:
            records.append(EvalRecord.model_validate(line.value))
        except ValueError:
            raise UsageError(f"{path}:{line.number}: not a `promptc eval --output` record") from None
    if not records:
        raise UsageError(f"{path}: the baseline has no records")
    return records
