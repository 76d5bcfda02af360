"""Report writers for `promptc eval`: JSON, CSV, Markdown, HTML, JUnit XML, GitHub summary.

They take plain `EvalSummary` / `EvalRecord` data and never compute scores. Files are
written to a temporary sibling and renamed, so a CI job never picks up half a report.
pandas is imported inside the functions that need it: promptc must start fast.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from promptc.errors import UsageError
from promptc.evaluation.records import EvalRecord, EvalReport, EvalSummary

if TYPE_CHECKING:
    import pandas

REPORT_SUFFIXES = (".json", ".csv", ".md", ".html")


# ----------------------------------------------------------------------------- shared helpers


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


def _ordered_keys(dicts: Iterable[dict[str, Any] | None]) -> list[str]:
    """Union of the keys, in first-seen order (dicts keep insertion order, sets do not)."""
    keys: dict[str, None] = {}
    for d in dicts:
        for k in d or ():
            keys.setdefault(k, None)
    return list(keys)


def metric_names(summary: EvalSummary | None, records: Sequence[EvalRecord]) -> list[str]:
    """Metric names: the summary's order first, then any only seen in records."""
    names = [m.name for m in summary.metrics] if summary is not None else []
    for k in _ordered_keys([r.scores for r in records] + [r.feedback for r in records]):
        if k not in names:
            names.append(k)
    return names


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    def write(p: Path) -> None:
        p.write_text(text, encoding="utf-8", newline="\n")

    write_atomic(path, write)


# ----------------------------------------------------------------------------- table (CSV)


def _cell(value: Any) -> Any:
    """Scalars stay typed for pandas; lists and dicts become JSON text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def records_frame(records: Sequence[EvalRecord]) -> pandas.DataFrame:
    """The per-example table, one row per example, one column per field/metric."""
    import pandas as pd

    inputs = _ordered_keys(r.inputs for r in records)
    gold = _ordered_keys(r.gold for r in records)
    preds = _ordered_keys(r.prediction for r in records)
    metrics = metric_names(None, records)
    columns = (["row"] + [f"input.{k}" for k in inputs] + [f"gold.{k}" for k in gold]
               + [f"pred.{k}" for k in preds] + ["status", "score", "passed"]
               + [f"score.{m}" for m in metrics] + [f"feedback.{m}" for m in metrics]
               + ["error", "latency", "prompt_tokens", "completion_tokens", "cost"])
    rows = []
    for r in records:
        row: dict[str, Any] = {"row": r.row, "status": r.status, "score": r.score,
                               "passed": r.passed, "error": r.error, "latency": r.latency,
                               "prompt_tokens": r.usage.prompt_tokens,
                               "completion_tokens": r.usage.completion_tokens,
                               "cost": r.usage.cost}
        row.update({f"input.{k}": _cell(v) for k, v in r.inputs.items()})
        row.update({f"gold.{k}": _cell(v) for k, v in r.gold.items()})
        row.update({f"pred.{k}": _cell(v) for k, v in (r.prediction or {}).items()})
        row.update({f"score.{k}": v for k, v in r.scores.items()})
        row.update({f"feedback.{k}": v for k, v in r.feedback.items()})
        rows.append([row.get(c) for c in columns])
    frame = pd.DataFrame(rows, columns=columns)
    # Explicit dtypes: a column of scores with one error row must stay float (NaN), and
    # `passed` must stay boolean with a real missing value, whatever pandas would infer.
    dtypes: dict[str, Any] = {"row": "int64", "score": "float64", "passed": "boolean",
                              "latency": "float64", "prompt_tokens": "int64",
                              "completion_tokens": "int64", "cost": "float64"}
    dtypes.update({f"score.{m}": "float64" for m in metrics})
    return frame.astype(dtypes)


# ----------------------------------------------------------------------------- Markdown


def md_escape(value: Any, limit: int = 80) -> str:
    """Text safe inside a Markdown table cell: one line, no pipes, no raw HTML, shortened."""
    text = " ".join(strip_ansi(to_text(value)).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
             align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (tabulate is not a dependency, so by hand)."""
    align = align or ["l"] * len(header)
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "| " + " | ".join(rule[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(low: float, high: float) -> str:
    return f"[{fmt_num(low)}, {fmt_num(high)}]"


def comparison_line(summary: EvalSummary, *, markdown: bool = True) -> str | None:
    """One sentence comparing with the baseline, or None without a comparison."""
    c = summary.comparison
    if c is None:
        return None
    verdict_text = "REGRESSION" if c.regression else "no regression"
    baseline = md_escape(c.baseline, 120) if markdown else c.baseline
    return (f"vs baseline {baseline}: {fmt_num(c.baseline_mean)} -> "
            f"{fmt_num(c.candidate_mean)} (diff {c.diff:+.3f}, 95% CI {_ci(c.low, c.high)}, "
            f"p = {fmt_num(c.p_value)}, {c.method}, n = {c.n}): {verdict_text}")


def usage_line(summary: EvalSummary) -> str:
    """Tokens, cost, calls and latency in one line."""
    u = summary.usage
    return (f"{u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion tokens, "
            f"cost {fmt_cost(u.cost)}, {u.calls:,} LM calls ({u.cache_hits:,} cached); "
            f"latency p50 {summary.latency_p50:.2f} s, p95 {summary.latency_p95:.2f} s; "
            f"wall {summary.wall_seconds:.1f} s"
            + (f"; constraint violations: {summary.soft_violations} soft, {summary.hard_violations} hard"
               if summary.soft_violations or summary.hard_violations else ""))


def markdown_summary(summary: EvalSummary, records: Sequence[EvalRecord], *,
                     worst: int = 5) -> str:
    """A short Markdown block (for $GITHUB_STEP_SUMMARY or a PR comment)."""
    why = reasons(summary)
    parts = [f"### promptc eval: {verdict(summary)} — {md_escape(summary.spec, 120)}", ""]
    parts.append(f"**{md_escape(summary.primary)}** mean **{fmt_num(summary.mean)}**, "
                 f"95% CI {_ci(summary.low, summary.high)} over {summary.n} examples"
                 + (f" ({'; '.join(why)})" if why else "") + ".")
    parts.append("")
    metric_rows = [[md_escape(m.name) + (" (primary)" if m.primary else ""), f"{m.weight:g}",
                    fmt_num(m.mean), _ci(m.low, m.high), m.n] for m in summary.metrics]
    if metric_rows:
        parts += [md_table(["metric", "weight", "mean", "95% CI", "n"], metric_rows,
                           ["l", "r", "r", "c", "r"]), ""]
    if summary.weighted_mean is not None:
        parts += [f"Weighted mean: **{fmt_num(summary.weighted_mean)}**", ""]
    line = comparison_line(summary)
    if line:
        parts += [line, ""]
    parts += [usage_line(summary), ""]
    # Perfect scores are never "worst", however few examples are left to show.
    picked = worst_examples([r for r in records if r.status != "pass" or (r.score or 0) < 1], worst)
    if picked:
        parts += [f"Worst {len(picked)} examples:", "", _worst_table(picked), ""]
    return "\n".join(parts)


def _worst_table(records: Sequence[EvalRecord]) -> str:
    rows = []
    for r in records:
        note = r.error if r.error is not None else "; ".join(
            f"{k}: {v}" for k, v in r.feedback.items())
        rows.append([r.row, r.status.upper(), fmt_num(r.score), md_escape(fields_text(r.inputs)),
                     md_escape(fields_text(r.prediction)), md_escape(fields_text(r.gold)),
                     md_escape(note, 120)])
    return md_table(["row", "status", "score", "inputs", "prediction", "gold", "feedback / error"],
                    rows, ["r", "l", "r", "l", "l", "l", "l"])


def markdown_report(summary: EvalSummary, records: Sequence[EvalRecord]) -> str:
    """The `.md` report: the summary block, run details and the 20 worst examples."""
    details = md_table(["run", ""], [["spec", md_escape(summary.spec, 200)],
                                  ["program", md_escape(summary.program or "(from spec)", 200)],
                                  ["data", md_escape(summary.data, 200)],
                                  ["exit code", summary.exit_code]])
    return markdown_summary(summary, records, worst=20) + "\n" + details + "\n"


def append_github_summary(summary: EvalSummary, records: Sequence[EvalRecord]) -> bool:
    """Append `markdown_summary` to the file named by $GITHUB_STEP_SUMMARY, if set.

    Returns whether it wrote. An unwritable file raises OSError: the caller decides
    whether that should fail the run.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(markdown_summary(summary, records) + "\n")
    return True


# ----------------------------------------------------------------------------- JUnit XML

# XML 1.0 cannot hold most control characters even escaped (ANSI colour codes in an error
# message are the usual culprit); CI parsers reject the whole file, so drop them.
def write_json(path: Path, summary: EvalSummary, records: Sequence[EvalRecord]) -> None:
    """Write the machine-readable report (`EvalReport`: summary plus every record)."""
    report = EvalReport(summary=summary, records=list(records))
    _write_text(Path(path), report.model_dump_json(indent=2) + "\n")


def load_report(path: Path) -> EvalReport:
    """Read a JSON report back (e.g. as a baseline); UsageError says what is wrong."""
    try:
        return EvalReport.model_validate_json(Path(path).read_bytes())
    except FileNotFoundError:
        raise UsageError(f"no eval report at {path}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path}: not a promptc eval report ({where}: {first['msg']})") from None


def write_csv(path: Path, records: Sequence[EvalRecord]) -> None:
    """Write the per-example table as CSV (UTF-8)."""
    frame = records_frame(records)
    write_atomic(Path(path), lambda p: frame.to_csv(p, index=False, encoding="utf-8"))


def write_report(path: Path, summary: EvalSummary, records: Sequence[EvalRecord]) -> None:
    """Write a report whose format is chosen by the file suffix (.json, .csv, .md, .html)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_json(path, summary, records)
    elif suffix == ".csv":
        write_csv(path, records)
    elif suffix == ".md":
        _write_text(path, markdown_report(summary, records))
    elif suffix in (".html", ".htm"):
        from promptc.evaluation.html_report import render_html

        _write_text(path, render_html(summary, records))
    else:
        raise UsageError(f"cannot write a report to {path}: unknown suffix {path.suffix!r} "
                         f"(use one of {', '.join(REPORT_SUFFIXES)})")
