"""The HTML eval report: one self-contained file that opens offline.

No network at all (no CDN, fonts, images or scripts from elsewhere; a CSP meta tag
enforces it), so the file can be archived as a CI artifact and opened years later.
Every value from the data or the program goes through `html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from promptc.evaluation.comparison import flipped
from promptc.evaluation.formatting import (
    comparison_line,
    fields_text,
    fmt_cost,
    fmt_num,
    metric_names,
    provenance_line,
    reasons,
    strip_ansi,
    verdict,
)
from promptc.evaluation.html_parts import filter_bar, page_head, scripts
from promptc.evaluation.records import EvalRecord, EvalSummary

BINS = 10


def render_html(summary: EvalSummary, records: Sequence[EvalRecord], *,
                baseline: Sequence[EvalRecord] | None = None) -> str:
    """The whole report as one HTML document (summary, score histogram, example table).

    With `baseline` (the records compared against), each example also shows the
    baseline's status, score and prediction, and the table can be filtered to flipped rows.
    """
    title = f"promptc eval: {summary.spec}"
    status = verdict(summary)
    why = "; ".join(reasons(summary))
    old = {r.row: r for r in baseline} if baseline is not None else None
    parts = [
        page_head(title),
        f'<h1>{escape(title)} <span class="badge {status}">{status}</span></h1>',
        f'<div class="muted">{escape(why)}</div>' if why else "",
        _run_line(summary),
        _cards(summary),
        "<h2>Metrics</h2>",
        _metrics_table(summary),
    ]
    line = comparison_line(summary, markdown=False)
    if line is not None and summary.comparison is not None:
        cls = "bad" if summary.comparison.regression else "muted"
        parts += ["<h2>Comparison</h2>", f'<p class="{cls}">{escape(line)}</p>']
    parts += [f"<h2>Distribution of {escape(summary.primary)} scores</h2>",
              histogram_svg([r.score for r in records if r.score is not None],
                            mean=summary.mean, threshold=summary.threshold),
              f"<h2>Examples ({len(records)})</h2>",
              '<p class="muted">Click a column header to sort; filter with the buttons or search.</p>',
              _examples_filter(records, old),
              _examples_table(summary, records, old),
              scripts(),
              "</body></html>", ""]
    return "\n".join(p for p in parts if p)


def _run_line(s: EvalSummary) -> str:
    bits = [f"spec {s.spec}", f"data {s.data}"]
    if s.program:
        bits.append(f"program {s.program}")
    bits.append(f"exit code {s.exit_code}")
    made = provenance_line(s)
    if made:
        bits.append(made)
    return f'<div class="muted mono">{escape(" · ".join(bits))}</div>'


def _cards(s: EvalSummary) -> str:
    u = s.usage
    cards = [
        (f"{fmt_num(s.mean)}", f"{s.primary} mean, 95% CI [{fmt_num(s.low)}, {fmt_num(s.high)}]"),
        (f"{s.n:,}", "examples"),
        (f"{s.errors:,}", "errors"),
    ]
    if s.threshold is not None:
        cards.append((f"{s.threshold:g}", "gate " + ("passed" if s.passed_gate else "not passed")))
    if s.weighted_mean is not None:
        cards.append((fmt_num(s.weighted_mean), "weighted mean"))
    cards += [
        (f"{u.prompt_tokens + u.completion_tokens:,}",
         f"tokens ({u.prompt_tokens:,} prompt + {u.completion_tokens:,} completion)"),
        (fmt_cost(u.cost), "cost"),
        (f"{s.latency_p50:.2f} s / {s.latency_p95:.2f} s", "latency p50 / p95"),
        (f"{s.wall_seconds:.1f} s", f"wall time, {u.calls:,} LM calls, {u.cache_hits:,} cached"),
    ]
    body = "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                   for v, k in cards)
    return f'<div class="cards">{body}</div>'


def _meter(value: float) -> str:
    pct = 0.0 if math.isnan(value) else max(0.0, min(1.0, value)) * 100
    return f'<span class="meter"><i style="width:{pct:.1f}%"></i></span>'


def _metrics_table(s: EvalSummary) -> str:
    rows = []
    for m in s.metrics:
        name = escape(m.name) + (' <span class="muted">(primary)</span>' if m.primary else "")
        rows.append(f"<tr><td>{name}</td><td class=n>{m.weight:g}</td>"
                    f"<td class=n>{fmt_num(m.mean)}{_meter(m.mean)}</td>"
                    f"<td class=n>[{fmt_num(m.low)}, {fmt_num(m.high)}]</td>"
                    f"<td class=n>{m.n:,}</td></tr>")
    head = "<tr><th>metric</th><th>weight</th><th>mean</th><th>95% CI</th><th>n</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def histogram_svg(scores: Sequence[float], *, mean: float | None = None,
                  threshold: float | None = None, width: int = 560, height: int = 180) -> str:
    """An inline SVG histogram of scores in 10 bins over [0, 1] (the last bin holds 1.0)."""
    counts = [0] * BINS
    for score in scores:
        # The epsilon keeps 0.7 in [0.7, 0.8) although 0.7 * 10 is 6.999... on some inputs.
        counts[min(max(int(math.floor(score * BINS + 1e-9)), 0), BINS - 1)] += 1
    left, right, top, bottom = 36, 10, 14, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(counts) or 1
    bar_w = plot_w / BINS
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="histogram of {len(scores)} scores">']
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        x, y = left + i * bar_w, top + plot_h - h
        lo, hi = i / BINS, (i + 1) / BINS
        label = f"{lo:.1f}–{hi:.1f}: {count} example{'s' if count != 1 else ''}"
        out.append(f'<rect class="bar" x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                   f'height="{h:.1f}"><title>{label}</title></rect>')
        if count:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                       f"{count}</text>")
    base = top + plot_h
    out.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}"/>')
    for i in range(0, BINS + 1, 2):
        x = left + i * bar_w
        out.append(f'<text x="{x:.1f}" y="{base + 16}" text-anchor="middle">{i / BINS:.1f}</text>')
    for value, cls, name in ((mean, "mean", "mean"), (threshold, "gate", "gate")):
        if value is not None and not math.isnan(value) and 0 <= value <= 1:
            x = left + value * plot_w
            out.append(f'<line class="{cls}" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{base}">'
                       f"<title>{name} {value:.3f}</title></line>")
    out.append("</svg>")
    return "".join(out)


def _num_td(value: float | int | None, text: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return '<td class=n data-v="">-</td>'
    return f'<td class=n data-v="{value!r}">{escape(text if text is not None else str(value))}</td>'


def _text_td(text: str, cls: str = "v") -> str:
    text = strip_ansi(text)
    return f'<td class="{cls}"><div>{escape(text)}</div></td>' if text else f'<td class="{cls}"></td>'


def _row_flags(r: EvalRecord, old: dict[int, EvalRecord] | None) -> dict[str, bool]:
    flags = {"failing": r.status in ("fail", "error"), "errors": r.status == "error"}
    if old is not None:
        flags["flipped"] = r.row in old and flipped(old[r.row], r)
    return flags


def _examples_filter(records: Sequence[EvalRecord], old: dict[int, EvalRecord] | None) -> str:
    flags = [_row_flags(r, old) for r in records]
    names = [("failing", "failing"), ("errors", "errors")]
    if old is not None:
        names.insert(0, ("flipped", "flipped vs baseline"))
    return filter_bar("examples", [(key, label, sum(f[key] for f in flags)) for key, label in names],
                      len(records))


def _examples_table(s: EvalSummary, records: Sequence[EvalRecord],
                    old: dict[int, EvalRecord] | None = None) -> str:
    metrics = metric_names(s, records)
    show_metrics = [m for m in metrics if m != s.primary]  # the primary is the score column
    head = ["row", "status", f"score ({s.primary})"]
    if old is not None:
        head += ["baseline", "baseline score", "baseline prediction"]
    head += show_metrics + ["inputs", "prediction", "gold", "feedback", "error", "latency s", "tokens", "cost"]
    rows = []
    for r in records:
        feedback = "\n".join(f"{k}: {v}" for k, v in r.feedback.items())
        cells = [_num_td(r.row), _status_td(r.status), _num_td(r.score, fmt_num(r.score))]
        if old is not None:
            cells += _baseline_cells(old.get(r.row))
        cells += [_num_td(r.scores.get(m), fmt_num(r.scores.get(m))) for m in show_metrics]
        cells += [_text_td(fields_text(r.inputs)), _text_td(fields_text(r.prediction)),
                  _text_td(fields_text(r.gold)), _text_td(feedback),
                  _text_td(r.error or "", "v err"),
                  _num_td(r.latency, f"{r.latency:.2f}"),
                  _num_td(r.usage.total_tokens, f"{r.usage.total_tokens:,}"),
                  _num_td(r.usage.cost, fmt_cost(r.usage.cost))]
        attrs = "".join(f' data-{k}="{int(v)}"' for k, v in _row_flags(r, old).items())
        rows.append(f'<tr data-row="{r.row}"{attrs}>{"".join(cells)}</tr>')
    thead = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (f'<table class="sortable" id="examples"><thead><tr>{thead}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")


def _status_td(status: str) -> str:
    return f'<td data-v="{status}"><span class="badge {status}">{status}</span></td>'


def _baseline_cells(b: EvalRecord | None) -> list[str]:
    if b is None:
        return ['<td data-v="">-</td>', _num_td(None), _text_td("")]
    return [_status_td(b.status), _num_td(b.score, fmt_num(b.score)),
            _text_td(b.error or fields_text(b.prediction), "v err" if b.error else "v")]
