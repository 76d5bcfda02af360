"""Report writers for `promptc eval`: JSON, CSV, Markdown, HTML, JUnit XML, GitHub summary.

They take plain `EvalSummary` / `EvalRecord` data and never compute scores. Files are
written to a temporary sibling and renamed, so a CI job never picks up half a report.
pandas is optional (the `tables` extra) and only `records_frame` uses it, imported inside.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from promptc.errors import UsageError, output_errors
from promptc.evaluation.formatting import (
    ci_text,
    comparison_line,
    fields_text,
    fmt_cost,
    fmt_num,
    md_escape,
    metric_names,
    ordered_keys,
    provenance_line,
    reasons,
    verdict,
    worst_examples,
)
from promptc.evaluation.records import EvalRecord, EvalReport, EvalSummary
from promptc.runner.output_paths import write_atomic

if TYPE_CHECKING:
    import pandas

REPORT_SUFFIXES = (".json", ".csv", ".md", ".html")


def _write_text(path: Path, text: str) -> None:
    def write(p: Path) -> None:
        p.write_text(text, encoding="utf-8", newline="\n")

    write_atomic(path, write)


# ----------------------------------------------------------------------------- table (CSV)


def _cell(value: Any) -> Any:
    """Scalars stay typed; lists and dicts become JSON text (one cell, parseable back)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def table_columns(records: Sequence[EvalRecord]) -> list[str]:
    """The per-example table's columns: fixed ones, then one per field and per metric."""
    inputs = ordered_keys(r.inputs for r in records)
    gold = ordered_keys(r.gold for r in records)
    preds = ordered_keys(r.prediction for r in records)
    metrics = metric_names(None, records)
    return (["row"] + [f"input.{k}" for k in inputs] + [f"gold.{k}" for k in gold]
            + [f"pred.{k}" for k in preds] + ["status", "score", "passed"]
            + [f"score.{m}" for m in metrics] + [f"feedback.{m}" for m in metrics]
            + ["error", "latency", "prompt_tokens", "completion_tokens", "cost"])


def _table_row(record: EvalRecord) -> dict[str, Any]:
    r = record
    row: dict[str, Any] = {"row": r.row, "status": r.status, "score": r.score,
                           "passed": r.passed, "error": r.error, "latency": r.latency,
                           "prompt_tokens": r.usage.prompt_tokens,
                           "completion_tokens": r.usage.completion_tokens, "cost": r.usage.cost}
    row.update({f"input.{k}": _cell(v) for k, v in r.inputs.items()})
    row.update({f"gold.{k}": _cell(v) for k, v in r.gold.items()})
    row.update({f"pred.{k}": _cell(v) for k, v in (r.prediction or {}).items()})
    row.update({f"score.{k}": v for k, v in r.scores.items()})
    row.update({f"feedback.{k}": v for k, v in r.feedback.items()})
    return row


def records_table(records: Sequence[EvalRecord]) -> tuple[list[str], list[list[Any]]]:
    """The per-example table as (columns, rows): one row per example, None where missing."""
    columns = table_columns(records)
    rows = []
    for record in records:
        row = _table_row(record)
        rows.append([row.get(c) for c in columns])
    return columns, rows


def records_frame(records: Sequence[EvalRecord]) -> pandas.DataFrame:
    """The per-example table as a pandas DataFrame (needs the `tables` extra).

    For Python users who analyse results; promptc itself writes its CSV without pandas.
    """
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("records_frame needs pandas: pip install 'promptc[tables]'") from None
    columns, rows = records_table(records)
    frame = pd.DataFrame(rows, columns=columns)
    # Explicit dtypes: a column of scores with one error row must stay float (NaN), and
    # `passed` must stay boolean with a real missing value, whatever pandas would infer.
    dtypes: dict[str, Any] = {"row": "int64", "score": "float64", "passed": "boolean",
                              "latency": "float64", "prompt_tokens": "int64",
                              "completion_tokens": "int64", "cost": "float64"}
    dtypes.update({c: "float64" for c in columns if c.startswith("score.")})
    return frame.astype(dtypes)


# ----------------------------------------------------------------------------- Markdown


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]],
             align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table (tabulate is not a dependency, so by hand)."""
    align = align or ["l"] * len(header)
    rule = {"l": "---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |",
             "| " + " | ".join(rule[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


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
                 f"95% CI {ci_text(summary.low, summary.high)} over {summary.n} examples"
                 + (f" ({'; '.join(why)})" if why else "") + ".")
    parts.append("")
    metric_rows = [[md_escape(m.name) + (" (primary)" if m.primary else ""), f"{m.weight:g}",
                    fmt_num(m.mean), ci_text(m.low, m.high), m.n] for m in summary.metrics]
    if metric_rows:
        parts += [md_table(["metric", "weight", "mean", "95% CI", "n"], metric_rows,
                           ["l", "r", "r", "c", "r"]), ""]
    if summary.weighted_mean is not None:
        parts += [f"Weighted mean: **{fmt_num(summary.weighted_mean)}**", ""]
    line = comparison_line(summary)
    if line:
        parts += [line, ""]
    parts += [usage_line(summary), ""]
    made = provenance_line(summary)
    if made:
        parts += [md_escape(made, 300), ""]
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

    Returns whether it wrote. An unwritable file is an OutputError naming it.
    """
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with output_errors(f"$GITHUB_STEP_SUMMARY ({target})"), open(target, "a", encoding="utf-8") as fh:
        fh.write(markdown_summary(summary, records) + "\n")
    return True


# ----------------------------------------------------------------------------- files


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
    """Write the per-example table as CSV (UTF-8, `\\n` line ends, an empty cell for missing).

    The stdlib writer, not pandas: one table written once needs no dataframe library.
    """
    columns, rows = records_table(records)

    def write(p: Path) -> None:
        with open(p, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)

    write_atomic(Path(path), write)


def check_report_suffix(path: Path) -> None:
    """UsageError unless the suffix names a report format (checked before the evaluation runs)."""
    if path.suffix.lower() not in (*REPORT_SUFFIXES, ".htm"):
        raise UsageError(f"cannot write a report to {path}: unknown suffix {path.suffix!r} "
                         f"(use one of {', '.join(REPORT_SUFFIXES)})")


def write_report(path: Path, summary: EvalSummary, records: Sequence[EvalRecord], *,
                 baseline: Sequence[EvalRecord] | None = None) -> None:
    """Write a report whose format is chosen by the file suffix (.json, .csv, .md, .html).

    `baseline` (the records compared against) adds per-row baseline columns to the HTML."""
    path = Path(path)
    check_report_suffix(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        write_json(path, summary, records)
    elif suffix == ".csv":
        write_csv(path, records)
    elif suffix == ".md":
        _write_text(path, markdown_report(summary, records))
    else:
        from promptc.evaluation.html_report import render_html

        _write_text(path, render_html(summary, records, baseline=baseline))
