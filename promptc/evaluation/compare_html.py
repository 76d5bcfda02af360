"""The compare report: a variants x metrics matrix and every row side by side, in one file.

Self-contained like the eval report (no network; see `html_parts`): sortable columns,
filter buttons (all / flipped / failing) and a search box over the rows. The JSON form
is the `CompareReport` model itself.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from promptc.evaluation.comparison import (
    CompareCell,
    CompareReport,
    CompareRow,
    MetricCell,
    VariantResult,
)
from promptc.evaluation.formatting import fields_text, fmt_cost, fmt_num, strip_ansi
from promptc.evaluation.html_parts import filter_bar, page_head, scripts
from promptc.runner.output_paths import write_atomic


def write_compare_report(path: Path, report: CompareReport) -> None:
    """`.json` (the CompareReport) or `.html`, written atomically."""
    if path.suffix.lower() == ".json":
        text = report.model_dump_json(indent=2) + "\n"
    else:
        text = render_compare_html(report)

    def write(p: Path) -> None:
        p.write_text(text, encoding="utf-8", newline="\n")

    write_atomic(path, write)


def render_compare_html(report: CompareReport) -> str:
    """The whole compare report as one HTML document."""
    names = [v.name for v in report.variants]
    title = f"promptc compare: {' vs '.join(names)}"
    flipped = sum(r.flipped for r in report.rows)
    failing = sum(r.failing for r in report.rows)
    parts = [
        page_head(title),
        f"<h1>{escape(title)}</h1>",
        _run_line(report),
        "<h2>Matrix</h2>",
        f'<p class="muted">Each variant against the first ({escape(names[0])}), paired by row; '
        f"p &lt; {report.alpha:g} is marked. Click a column header to sort.</p>",
        _matrix(report),
        f"<h2>Rows ({len(report.rows):,}; {flipped:,} flipped)</h2>",
        '<p class="muted">A row flipped when it passed in one variant and not in another.</p>',
        filter_bar("rows", [("flipped", "flipped", flipped), ("failing", "failing", failing)], len(report.rows)),
        _rows_table(report),
        scripts(),
        "</body></html>", "",
    ]
    return "\n".join(parts)


def _run_line(report: CompareReport) -> str:
    bits = [f"data {report.data}", f"primary metric {report.primary}"]
    p = report.provenance
    if p is not None:
        bits += [f"models {p.models_text()}", f"promptc {p.promptc_version}", p.timestamp]
    return f'<div class="muted mono">{escape(" · ".join(bits))}</div>'


def _num(value: float | int | None, text: str | None = None, cls: str = "n") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f'<td class="{cls}" data-v="">-</td>'
    return f'<td class="{cls}" data-v="{value!r}">{escape(text if text is not None else str(value))}</td>'


def _matrix(report: CompareReport) -> str:
    metrics = [m.name for m in report.variants[0].metrics]
    head = ["variant", "program", "model"]
    for m in metrics:
        head += [f"{m} mean", f"{m} 95% CI", f"{m} Δ vs first", f"{m} p"]
    head += ["gained", "lost", "errors", "n", "tokens", "cost", "latency p50 s", "latency p95 s",
             "LM calls", "cache hits"]
    body = "".join(_matrix_row(v, metrics) for v in report.variants)
    thead = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (f'<div class="scroll"><table class="sortable" id="matrix"><thead><tr>{thead}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _matrix_row(v: VariantResult, metrics: list[str]) -> str:
    s, u = v.summary, v.summary.usage
    cells = [f"<td>{escape(v.name)}</td>", f'<td class="mono">{escape(v.program)}</td>',
             f"<td>{escape(v.model or '(spec)')}</td>"]
    by_name = {m.name: m for m in v.metrics}
    for name in metrics:
        cells += _metric_cells(by_name.get(name))
    cells += [_num(v.gained), _num(v.lost), _num(s.errors), _num(s.n),
              _num(u.prompt_tokens + u.completion_tokens, f"{u.prompt_tokens + u.completion_tokens:,}"),
              _num(u.cost, fmt_cost(u.cost)), _num(s.latency_p50, f"{s.latency_p50:.3f}"),
              _num(s.latency_p95, f"{s.latency_p95:.3f}"), _num(u.calls), _num(u.cache_hits)]
    return f'<tr data-variant="{escape(v.name)}">{"".join(cells)}</tr>'


def _metric_cells(m: MetricCell | None) -> list[str]:
    if m is None:
        return [_num(None)] * 4
    cells = [_num(m.mean, fmt_num(m.mean)), _num(m.low, f"[{fmt_num(m.low)}, {fmt_num(m.high)}]")]
    if m.diff is None:
        return cells + [_num(None), _num(None)]
    diff = f"{m.diff:+.3f} [{m.diff_low:+.3f}, {m.diff_high:+.3f}]" if m.diff_low is not None else f"{m.diff:+.3f}"
    mark = " bad" if m.significant and m.diff < 0 else ""
    p_text = f"{fmt_num(m.p_value, 4)}{' *' if m.significant else ''}"
    return cells + [_num(m.diff, diff, "n" + mark), _num(m.p_value, p_text, "n" + mark)]


def _rows_table(report: CompareReport) -> str:
    head = ["row", "inputs", "gold"] + [v.name for v in report.variants]
    thead = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(_row(r) for r in report.rows)
    return f'<table class="sortable" id="rows"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>'


def _row(r: CompareRow) -> str:
    cells = [_num(r.row), _text(fields_text(r.inputs)), _text(fields_text(r.gold))]
    cells += [_outcome(c) for c in r.results]
    return (f'<tr data-row="{r.row}" data-flipped="{int(r.flipped)}" data-failing="{int(r.failing)}">'
            f'{"".join(cells)}</tr>')


def _text(text: str) -> str:
    text = strip_ansi(text)
    return f'<td class="v"><div>{escape(text)}</div></td>' if text else '<td class="v"></td>'


def _outcome(c: CompareCell | None) -> str:
    if c is None:
        return '<td data-v="">not run</td>'
    detail = strip_ansi(c.error) if c.error else fields_text(c.prediction)
    score = "" if c.score is None else f" {fmt_num(c.score)}"
    key = "" if c.score is None else repr(c.score)
    return (f'<td class="v" data-v="{key}" data-status="{c.status}"><span class="badge {c.status}">'
            f"{c.status}</span>{escape(score)}<div>{escape(detail)}</div></td>")
