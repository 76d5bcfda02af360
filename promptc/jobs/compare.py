"""`promptc.compare`: evaluate several programs and/or models on the same rows, side by side.

Variants are the cross product of the programs (specs or compiled artifacts) and the
models (none: each program's own). They run one after another on the same rows, with
the same metrics (the first program's, unless given), through the same response cache
file, so a request two variants share is sent once. The statistics and the per-row
table are `promptc.evaluation.comparison`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from promptc.evaluation.comparison import CompareReport, VariantRun
from promptc.evaluation.records import EvalRecord, Provenance
from promptc.jobs.data import DataLike, as_source
from promptc.jobs.metrics import MetricLike
from promptc.jobs.program import LoadedProgram
from promptc.runner.batch import BatchStats
from promptc.runner.source import RowSource

REPORT_SUFFIXES = (".json", ".html", ".htm")


@dataclass(frozen=True)
class Variant:
    """One thing to evaluate: a spec or artifact path, optionally with another model."""

    name: str
    program: Path
    model: str | None = None


class CompareResult(BaseModel):
    """The comparison, every variant's records (in variant order), and files written."""

    report: CompareReport
    records: list[list[EvalRecord]]
    reports: list[Path] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """3 when a variant had too many endpoint failures, else 0 (a comparison has no gate)."""
        return max((v.summary.exit_code for v in self.report.variants if v.summary.exit_code == 3), default=0)


def variants(programs: Sequence[str | Path], models: Sequence[str] = ()) -> list[Variant]:
    """Programs x models, named `program` or `program@model` (unique, in order)."""
    from promptc.errors import UsageError

    if len(set(models)) != len(models):
        raise UsageError("a --model is given twice; each model is one variant")
    paths = [Path(p) for p in programs]
    labels = _labels(paths)
    out = [Variant(f"{label}@{m}" if m else label, path, m or None)
           for path, label in zip(paths, labels, strict=True) for m in (models or [""])]
    if len(out) < 2:
        raise UsageError("compare needs at least two variants: two programs, or one program and two --model")
    return out


def _labels(paths: Sequence[Path]) -> list[str]:
    def short(p: Path) -> str:
        if p.name == "program.json":
            return p.parent.name or "program"
        return p.stem if p.suffix in (".yaml", ".yml", ".json") else p.name

    labels = [short(p) for p in paths]
    # Two programs named alike (a/x.yaml, b/x.yaml) are told apart by the path as given,
    # and the same path given twice by its position.
    labels = [str(p) if labels.count(label) > 1 else label for p, label in zip(paths, labels, strict=True)]
    return [f"{label}#{labels[:i].count(label) + 1}" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]


def compare(programs: Sequence[str | Path], data: DataLike | None = None, *, models: Sequence[str] = (),
            metrics: Sequence[MetricLike] | None = None, limit: int | None = None, on_error: str = "fail",
            concurrency: int | None = None, alpha: float = 0.05, base_url: str | None = None,
            cache: bool = True, cache_dir: str | Path | None = None, offline: bool = False,
            reports: Sequence[str | Path] = (), on_variant: Callable[[str], None] | None = None,
            on_start: Callable[[int], None] | None = None,
            on_update: Callable[[BatchStats], None] | None = None) -> CompareResult:
    """Evaluate every variant on the same rows; the matrix against the first, and the flips.

    `data` defaults to the first program's `data.dev`. `on_variant` gets each variant's
    name before it runs; `on_start` / `on_update` are `promptc.evaluate`'s, per variant.
    """
    from promptc.evaluation.comparison import build_report
    from promptc.jobs.evaluate import evaluate
    from promptc.jobs.program import lm_options, load_source
    from promptc.runner.source import source_label

    _check_reports(reports)
    todo = variants(programs, models)
    runs: list[VariantRun] = []
    warnings: list[str] = []
    rows: RowSource | None = None
    configs = metrics
    for v in todo:
        if on_variant is not None:
            on_variant(v.name)
        options = lm_options(model=v.model, base_url=base_url, cache=cache, cache_dir=cache_dir,
                             offline=offline, concurrency=concurrency)
        spec, artifact = (v.program, None) if v.program.suffix in (".yaml", ".yml") else (None, v.program)
        with load_source(spec, artifact, options) as source:
            if rows is None:  # the first variant decides the rows and the metrics of all
                rows, configs = _rows_and_metrics(source, data, metrics)
            result = evaluate(source, rows, metrics=configs, limit=limit, on_error=on_error,
                              concurrency=concurrency, on_start=on_start, on_update=on_update)
        warnings += [w for w in result.warnings if w not in warnings]
        runs.append(VariantRun(v.name, str(v.program), v.model, result.summary, result.records))
    assert rows is not None
    report = build_report(runs, data=source_label(rows), alpha=alpha)
    report.provenance = _merged([r.summary.provenance for r in runs])
    out = CompareResult(report=report, records=[r.records for r in runs], warnings=warnings)
    return _write(out, reports)


def _rows_and_metrics(source: LoadedProgram, data: DataLike | None,
                      metrics: Sequence[MetricLike] | None) -> tuple[RowSource, list[MetricLike]]:
    from promptc.errors import UsageError
    from promptc.jobs.metrics import metric_configs

    rows = as_source(data) if data is not None else source.data_path("dev")
    if rows is None:
        raise UsageError("no data: pass --data FILE or set `data.dev` in the first spec")
    return rows, list(metric_configs(source, metrics))


def _merged(blocks: Sequence[Provenance | None]) -> Provenance | None:
    present = [b for b in blocks if b is not None]
    if not present:
        return None
    models = []
    for block in present:
        models += [e for e in block.models if e not in models]
    return Provenance(models=models, promptc_version=present[-1].promptc_version,
                      timestamp=present[-1].timestamp)


def _check_reports(reports: Sequence[str | Path]) -> None:
    from promptc.errors import UsageError

    for path in reports:
        if Path(path).suffix.lower() not in REPORT_SUFFIXES:
            raise UsageError(f"cannot write a compare report to {path}: use a .json or .html file")


def _write(result: CompareResult, reports: Sequence[str | Path]) -> CompareResult:
    from promptc.evaluation.compare_html import write_compare_report

    for path in reports:
        write_compare_report(Path(path), result.report)
        result.reports.append(Path(path))
    return result
