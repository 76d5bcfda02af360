"""Glue between a loaded spec and the evaluator: which metrics, and what baseline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from promptc.cli.source import Source
from promptc.core.program import Program
from promptc.errors import Location, SpecError, UsageError
from promptc.evaluate.records import EvalRecord
from promptc.metrics.config import MetricConfig, NamedMetric, build_metrics, parse_metric
from promptc.metrics.judge import JudgeRunner
from promptc.runner.jsonl import iter_jsonl


def default_field(program: Program) -> str:
    """The output a metric scores when it names none: the last non-reasoning output."""
    names = [f.name for f in program.output_fields if f.name != "reasoning"]
    return names[-1] if names else program.output_fields[-1].name


def _default_config(program: Program) -> MetricConfig:
    field = next(f for f in program.output_fields if f.name == default_field(program))
    kind = {"enum": "label_accuracy", "float": "numeric_match", "int": "numeric_match",
            "json": "json_valid"}.get(field.type.kind, "exact_match")
    return parse_metric({"type": kind})


def metric_configs(source: Source, program: Program, cli: list[str] | None) -> list[MetricConfig]:
    """--metric flags, else the spec's `metric:` block, else a default by output type."""
    if cli:
        configs = []
        for text in cli:
            try:
                if text.startswith("python:"):
                    configs.append(parse_metric({"python": text.removeprefix("python:")}))
                else:
                    configs.append(parse_metric({"type": text}))
            except ValueError as exc:
                raise UsageError(f"--metric {text}: {_first_line(exc)}") from None
        return configs
    declared: Any = source.loaded.document.metric if source.loaded else source.metrics
    if declared is None:
        return [_default_config(program)]
    return list(declared) if isinstance(declared, list) else [declared]


def resolve_metrics(source: Source, program: Program, cli: list[str] | None,
                    judge: JudgeRunner | None = None) -> list[NamedMetric]:
    """Built metrics; a problem in the spec's block is reported at its location."""
    configs = metric_configs(source, program, cli)
    try:
        return build_metrics(configs, default_field=default_field(program),
                             judge=judge or JudgeRunner(program.lms))
    except ValueError as exc:
        loaded = source.loaded
        if cli or loaded is None:
            raise UsageError(f"{'--metric' if cli else source.label}: {_first_line(exc)}") from None
        loc = loaded.positions.locate(("metric",), file=loaded.file)
        raise SpecError([(Location(loc.file, loc.line, loc.column, "metric"), str(exc))]) from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def load_baseline(path: Path, source: Source, metrics: list[NamedMetric], data: Path,
                  limit: int | None) -> list[EvalRecord]:
    """Records to compare with: an earlier `--output` file, or an artifact evaluated now."""
    if path.suffix == ".jsonl":
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
    from promptc.artifacts.program_file import apply_artifact, load_artifact
    from promptc.evaluate.evaluator import EvalJob

    program = apply_artifact(source.program, load_artifact(path))
    job = EvalJob(program=program, metrics=metrics, data=data, limit=limit,
                  concurrency=source.lm_configs["default"].concurrency)
    job.prepare()
    return asyncio.run(job.run())
