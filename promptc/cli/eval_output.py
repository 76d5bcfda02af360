"""What `promptc eval` prints and writes at the end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from promptc.cli.common import stderr, stdout, usage_line
from promptc.evaluation.records import EvalRecord, EvalSummary

if TYPE_CHECKING:
    from promptc.jobs.evaluate import EvalResult


def print_files(result: EvalResult) -> None:
    """Where the evaluation's report files went (and what resuming repaired)."""
    for note in result.notes:
        stderr.print(f"[yellow]note[/]: {escape(note)}")
    for path in result.reports:
        stderr.print(f"report: {path}")
    if result.junit is not None:
        stderr.print(f"junit: {result.junit}")
    if result.github_summary:
        stderr.print("summary appended to $GITHUB_STEP_SUMMARY")


def _short(value: object, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_summary(summary: EvalSummary, records: Sequence[EvalRecord], *, show_failures: int) -> None:
    from promptc.evaluation.reports import worst_examples

    table = Table(title=f"eval: {summary.spec} on {summary.data}", show_header=True, title_justify="left")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("n", justify="right")
    for m in summary.metrics:
        name = m.name + (" (primary)" if m.primary else "") + (f" ×{m.weight:g}" if len(summary.metrics) > 1 else "")
        table.add_row(escape(name), f"{m.mean:.3f}", f"[{m.low:.3f}, {m.high:.3f}]", str(m.n))
    if summary.weighted_mean is not None:
        table.add_row("weighted", f"{summary.weighted_mean:.3f}", "", "")
    stdout.print(table)
    stdout.print(f"n={summary.n}, errors={summary.errors}, {summary.primary}: {summary.mean:.3f} "
                 f"(95% CI {summary.low:.3f}–{summary.high:.3f})"
                 + (f", threshold {summary.threshold:g}" if summary.threshold is not None else ""))
    stdout.print(f"latency p50 {summary.latency_p50:.3f}s, p95 {summary.latency_p95:.3f}s; "
                 f"wall {summary.wall_seconds:.1f}s")
    stdout.print(usage_line(summary.usage))
    if summary.provenance is not None:
        p = summary.provenance
        stdout.print(f"models: {escape(p.models_text())}; promptc {p.promptc_version}; {p.timestamp}")
    if summary.soft_violations or summary.hard_violations:
        from collections import Counter

        counts = Counter(name for r in records for name in r.violations)
        detail = ", ".join(f"{escape(k)}: {v}" for k, v in counts.most_common())
        stdout.print(f"constraint violations: {summary.soft_violations} soft, {summary.hard_violations} hard "
                     f"({detail})")
    cmp = summary.comparison
    if cmp is not None:
        verdict = "[red]significant regression[/]" if cmp.regression else "no significant regression"
        stdout.print(f"vs baseline {escape(cmp.baseline)}: {cmp.baseline_mean:.3f} -> {cmp.candidate_mean:.3f}, "
                     f"diff {cmp.diff:+.3f} (95% CI {cmp.low:+.3f}..{cmp.high:+.3f}), p={cmp.p_value:.4f} "
                     f"({cmp.method}, n={cmp.n}): {verdict}")
    bad = [r for r in worst_examples(records, show_failures) if r.status in ("error", "fail")] if show_failures else []
    for r in bad:
        stdout.print(f"\n[bold]row {r.row}[/] ({r.status}, score {r.score if r.score is not None else '-'})")
        stdout.print(f"  inputs:     {escape(_short(r.inputs))}")
        stdout.print(f"  gold:       {escape(_short(r.gold))}")
        stdout.print(f"  prediction: {escape(_short(r.prediction))}")
        for name, text in r.feedback.items():
            stdout.print(f"  feedback ({escape(name)}): {escape(_short(text))}")
        if r.error:
            stdout.print(f"  error:      {escape(_short(r.error, 300))}")
    verdict = "[green]PASS[/]" if summary.exit_code == 0 else "[red]FAIL[/]"
    stdout.print(f"\n{verdict}")
