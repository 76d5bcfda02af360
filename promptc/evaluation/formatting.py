"""Text helpers every eval report format shares: numbers, verdicts, escaping, atomic files.

Kept apart from the writers (`reports`, `html_report`, `junit`) so each writer imports
these without importing the others: `reports.write_report` picks a writer by suffix, and
a helper module below all of them keeps that from becoming an import cycle.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from promptc.evaluation.records import EvalRecord, EvalSummary


def worst_examples(records: Iterable[EvalRecord], n: int) -> list[EvalRecord]:
    """The `n` worst examples: errors first, then the lowest primary score; ties by row."""
    if n <= 0:
        return []
    return sorted(records, key=_badness)[:n]


def _badness(record: EvalRecord) -> tuple[int, float, int]:
    if record.status == "error":
        return (0, 0.0, record.row)
    return (1, record.score if record.score is not None else 0.0, record.row)


def verdict(summary: EvalSummary) -> str:
    """'PASS' or 'FAIL', as CI sees it (the exit code decides, not the mean alone)."""
    return "PASS" if summary.exit_code == 0 else "FAIL"


def reasons(summary: EvalSummary) -> list[str]:
    """Short phrases saying why the run passed or failed, for headlines."""
    out: list[str] = []
    if summary.threshold is not None:
        # Not `passed_gate`: a regression alone also fails the gate with the mean above it.
        op = ">=" if summary.mean >= summary.threshold else "<"
        out.append(f"{summary.primary} mean {fmt_num(summary.mean)} {op} "
                   f"threshold {summary.threshold:g}")
    if summary.comparison is not None and summary.comparison.regression:
        out.append(f"regression vs baseline ({summary.comparison.diff:+.3f})")
    if summary.errors:
        out.append(f"{summary.errors} of {summary.n} examples errored")
    return out


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A float for people: fixed digits, '-' for missing or not-a-number."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def fmt_cost(cost: float) -> str:
    """USD with enough digits that small evaluation costs do not show as $0.00."""
    return f"${cost:.2f}" if cost >= 1 else f"${cost:.4f}"


# Colour codes from a terminal-minded error message are noise in every report format.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


def to_text(value: Any) -> str:
    """One value as text: strings as they are, everything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def fields_text(fields: dict[str, Any] | None) -> str:
    """'name: value' lines for a dict of fields (inputs, gold, prediction)."""
    if not fields:
        return ""
    return "\n".join(f"{k}: {to_text(v)}" for k, v in fields.items())


def ordered_keys(dicts: Iterable[dict[str, Any] | None]) -> list[str]:
    """Union of the keys, in first-seen order (dicts keep insertion order, sets do not)."""
    keys: dict[str, None] = {}
    for d in dicts:
        for k in d or ():
            keys.setdefault(k, None)
    return list(keys)


def metric_names(summary: EvalSummary | None, records: Sequence[EvalRecord]) -> list[str]:
    """Metric names: the summary's order first, then any only seen in records."""
    names = [m.name for m in summary.metrics] if summary is not None else []
    for k in ordered_keys([r.scores for r in records] + [r.feedback for r in records]):
        if k not in names:
            names.append(k)
    return names


def md_escape(value: Any, limit: int = 80) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no raw HTML, shortened."""
    text = " ".join(strip_ansi(to_text(value)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def ci_text(low: float, high: float) -> str:
    """A confidence interval for people: `[0.420, 0.840]`."""
    return f"[{fmt_num(low)}, {fmt_num(high)}]"


def comparison_line(summary: EvalSummary, *, markdown: bool = True) -> str | None:
    """One sentence comparing with the baseline, or None without a comparison."""
    c = summary.comparison
    if c is None:
        return None
    verdict_text = "REGRESSION" if c.regression else "no regression"
    baseline = md_escape(c.baseline, 120) if markdown else c.baseline
    return (f"vs baseline {baseline}: {fmt_num(c.baseline_mean)} -> "
            f"{fmt_num(c.candidate_mean)} (diff {c.diff:+.3f}, 95% CI {ci_text(c.low, c.high)}, "
            f"p = {fmt_num(c.p_value)}, {c.method}, n = {c.n}): {verdict_text}")


def provenance_line(summary: EvalSummary) -> str | None:
    """'model fake-model @ host · promptc 0.1.0 · 2026-12-01T19:00:00+00:00', or None."""
    p = summary.provenance
    if p is None:
        return None
    return " · ".join([f"model {p.models_text() or '-'}", f"promptc {p.promptc_version}", p.timestamp])
