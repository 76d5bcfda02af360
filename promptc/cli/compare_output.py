"""What `promptc compare` prints: progress per variant, the matrix and the flipped rows."""

from __future__ import annotations

import json
from types import TracebackType

from rich.markup import escape
from rich.table import Table

from promptc.cli.common import stdout
from promptc.cli.progress import BatchProgress
from promptc.evaluation.comparison import CompareCell, CompareReport, MetricCell
from promptc.runner.batch import BatchStats


class VariantProgress:
    """One progress bar per variant, the previous one closed when the next starts."""

    def __init__(self) -> None:
        self._bar: BatchProgress | None = None

    def __enter__(self) -> VariantProgress:
        return self

    def variant(self, name: str) -> None:
        self._close()
        self._bar = BatchProgress(f"eval {name}")

    def start(self, total: int | None) -> None:
        if self._bar is not None:
            self._bar.start(total)

    def update(self, stats: BatchStats) -> None:
        if self._bar is not None:
            self._bar.update(stats)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._close()


def _short(value: object, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _diff(m: MetricCell | None) -> str:
    if m is None or m.diff is None or m.p_value is None:
        return "-"
    text = f"{m.diff:+.3f} p={m.p_value:.4f}"
    return f"[bold]{text} *[/]" if m.significant else text


def print_comparison(report: CompareReport, *, show_flipped: int) -> None:
    """The matrix, then the flipped rows (up to `show_flipped`) with every variant's output."""
    metrics = [m.name for m in report.variants[0].metrics]
    table = Table(title=f"compare on {report.data} (vs {report.variants[0].name}; * p < {report.alpha:g})",
                  title_justify="left")
    for col in ["variant", *[c for m in metrics for c in (f"{m} (95% CI)", f"{m} Δ")], "gained/lost",
                "errors", "tokens", "cost", "latency p50/p95"]:
        table.add_column(escape(col), justify="left" if col == "variant" else "right")
    for v in report.variants:
        by_name = {m.name: m for m in v.metrics}
        cells = []
        for name in metrics:
            m = by_name.get(name)
            cells += [f"{m.mean:.3f} [{m.low:.3f}, {m.high:.3f}]" if m else "-", _diff(m)]
        s, u = v.summary, v.summary.usage
        table.add_row(escape(v.name), *cells, f"+{v.gained}/-{v.lost}", str(s.errors),
                      f"{u.prompt_tokens + u.completion_tokens:,}", f"${u.cost:.4f}",
                      f"{s.latency_p50:.2f}s/{s.latency_p95:.2f}s")
    stdout.print(table)
    if report.provenance is not None:
        p = report.provenance
        stdout.print(f"models: {escape(p.models_text())}; promptc {p.promptc_version}; {p.timestamp}")
    flipped = report.flipped_rows
    stdout.print(f"{len(flipped)} of {len(report.rows)} rows flipped")
    names = [v.name for v in report.variants]
    for r in flipped[:show_flipped]:
        stdout.print(f"\n[bold]row {r.row}[/]  inputs: {escape(_short(r.inputs))}  gold: {escape(_short(r.gold))}")
        for name, cell in zip(names, r.results, strict=True):
            stdout.print(f"  {escape(name)}: {escape(_outcome(cell))}")


def _outcome(c: CompareCell | None) -> str:
    if c is None:
        return "not run"
    detail = c.error if c.error else _short(c.prediction)
    return f"{c.status.upper()} {'' if c.score is None else f'{c.score:.2f} '}{_short(detail, 160)}"
