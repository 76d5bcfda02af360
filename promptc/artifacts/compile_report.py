"""The compile report (`report.html`): what a compile tried, what it chose and why.

One self-contained file that opens from disk with no network at all (a CSP meta tag
enforces it): the trajectory chart, per step the final instruction as a word diff against
the original, the chosen demos and the runner-up instructions, every trial, and the
provenance. It is rebuilt from the compile folder alone (`program.json` + `trials.jsonl`),
reading trials as plain JSON so that trial files of older and newer versions render too.
Every value from the data, the spec or an LM goes through `html.escape`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from promptc.artifacts.program_file import PredictorArtifact, ProgramArtifact, load_artifact
from promptc.artifacts.report_chart import Point, trajectory_svg
from promptc.artifacts.report_parts import (
    CSS,
    card_grid,
    demos_table,
    provenance_table,
    trials_table,
)
from promptc.artifacts.trial_text import changed_instructions, footing, shorten
from promptc.artifacts.word_diff import changed, word_diff_html
from promptc.errors import OutputError, UsageError

REPORT_NAME = "report.html"
RUNNERS_UP = 8


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild the report of a compile folder from its program.json and trials.jsonl;
    written to `out` (default FOLDER/report.html). UsageError names what is missing."""
    base = Path(folder)
    if not base.is_dir():
        raise UsageError(f"{base}: not a compile folder (expected a folder holding program.json)")
    artifact = load_artifact(base)
    target = Path(out) if out is not None else base / REPORT_NAME
    save_report(target, render_report(artifact, read_trials(base / "trials.jsonl")))
    return target


def save_report(target: Path, html: str) -> None:
    """Write atomically: a reader never sees half a report. OutputError if it cannot."""
    tmp = target.with_suffix(target.suffix + ".tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def read_trials(path: Path) -> list[dict[str, Any]]:
    """Trials as dicts in index order (the last record of an index wins, as on resume);
    lines that are not trial objects (a torn last line) are skipped."""
    if not path.exists():
        return []
    trials: dict[int, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("index"), int):
            trials[record["index"]] = record
    return [trials[i] for i in sorted(trials)]


def render_report(artifact: ProgramArtifact, trials: Sequence[Mapping[str, Any]]) -> str:
    """The whole report as one HTML document."""
    prov = artifact.provenance
    original = original_instructions(artifact, trials)
    title = f"promptc compile: {artifact.name}"
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
             "style-src 'unsafe-inline'; img-src data:\">",
             f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{escape(title)}</h1>", _summary_line(artifact), card_grid(prov, trials),
             "<h2>Optimization trajectory</h2>", _trajectory(trials, prov, original)]
    for predictor in artifact.predictors:
        parts.append(_predictor_section(predictor, original.get(predictor.name), trials))
    parts += [f"<h2>Trials ({len(trials)})</h2>",
              '<p class="muted">Scores on different footings (all of dev, or a subset of rows) are not '
              "comparable with each other. Cumulative calls and cost include what was spent between "
              "trials (proposals, reflections, rollouts).</p>",
              trials_table(trials, _cumulative(trials), original, prov.get("best_trial")),
              "<h2>Provenance</h2>", provenance_table(artifact, trials), "</body></html>", ""]
    return "\n".join(p for p in parts if p)


def original_instructions(artifact: ProgramArtifact, trials: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Each predictor's instructions before the compile: from the provenance, or (artifacts
    written before it was recorded) from the first trial, which starts from the spec."""
    recorded = artifact.provenance.get("original_instructions")
    if isinstance(recorded, dict) and recorded:
        return {str(k): str(v) for k, v in recorded.items()}
    first = trials[0].get("state", {}) if trials else {}
    return {name: str(state.get("instructions", "")) for name, state in first.items() if isinstance(state, dict)}


def instructions_of(trial: Mapping[str, Any]) -> dict[str, str]:
    state = trial.get("state") or {}
    return {name: str(s.get("instructions", "")) for name, s in state.items() if isinstance(s, dict)}


def _summary_line(artifact: ProgramArtifact) -> str:
    prov = artifact.provenance
    metric = artifact.metric[0] if artifact.metric else None
    bits = [f"optimizer {prov.get('optimizer', '?')}", f"seed {prov.get('seed', '?')}"]
    if metric is not None:
        bits.append(f"metric {metric.name or metric.kind}" + (f" on {metric.field}" if metric.field else ""))
    before, after = prov.get("dev_score_before"), prov.get("dev_score_after")
    if after is not None:
        bits.append(f"dev {_fmt(before)} → {_fmt(after)} (best trial {prov.get('best_trial')})")
    line = f'<div class="muted mono">{escape(" · ".join(bits))}</div>'
    if prov.get("stopped_early"):
        line += f'<p class="warn">Stopped early: {escape(str(prov["stopped_early"]))}; the best trial so far was kept.</p>'
    return line


def _fmt(score: Any) -> str:
    return f"{score:.3f}" if isinstance(score, (int, float)) else "-"


def _cumulative(trials: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(calls, cost) the compile had spent when each trial was logged."""
    calls, cost, out = 0, 0.0, []
    for t in trials:
        for key in ("overhead", "usage"):
            usage = t.get(key) or {}
            calls += int(usage.get("calls", 0) or 0)
            cost += float(usage.get("cost", 0.0) or 0.0)
        out.append((calls, cost))
    return out


def _trajectory(trials: Sequence[Mapping[str, Any]], prov: Mapping[str, Any], original: Mapping[str, str]) -> str:
    if not trials:
        return '<p class="muted">No trials.jsonl beside program.json: nothing to chart.</p>'
    spent = _cumulative(trials)
    best = prov.get("best_trial")
    stopped = prov.get("stopped_early")
    charts = []
    for axis, x_label, money in ((0, "cumulative LM calls", False), (1, "cumulative cost (USD)", True)):
        if money and not spent[-1][1]:
            continue
        points = [Point(index=int(t["index"]), x=spent[i][axis], score=t.get("score"),
                        full_eval=bool(t.get("full_eval", True)), title=_point_title(t, original),
                        chosen=t["index"] == best) for i, t in enumerate(trials)]
        charts.append(trajectory_svg(points, x_label=x_label, stopped=str(stopped) if stopped else None,
                                     money=money))
    legend = ('<div class="legend muted"><span><i class="sw full"></i>scored on all of dev</span>'
              '<span><i class="sw subset"></i>scored on a subset (minibatch)</span>'
              '<span><i class="sw unscored"></i>not scored</span>'
              '<span><i class="ln dev"></i>best dev score so far</span>'
              '<span><i class="ln subset"></i>best subset score so far</span>'
              '<span><i class="sw chosen"></i>the result</span></div>')
    cost_note = "" if spent[-1][1] else '<p class="muted">No cost chart: no call had a price (see `prices:`).</p>'
    return legend + "".join(f'<figure class="chart">{c}</figure>' for c in charts) + cost_note


def _point_title(t: Mapping[str, Any], original: Mapping[str, str]) -> str:
    score = t.get("score")
    where = footing(score is not None, bool(t.get("full_eval", True)), int(t.get("n", 0) or 0))
    text = f"trial {t['index']} · {t.get('kind', '')} · {_fmt(score)} ({where})"
    if t.get("description"):
        text += f"\n{t['description']}"
    for name, new in changed_instructions(original, instructions_of(t)).items():
        text += f"\n{name}: {shorten(new, 160)}"
    return text


def _predictor_section(p: PredictorArtifact, original: str | None, trials: Sequence[Mapping[str, Any]]) -> str:
    final = p.signature.instructions or ""
    head = f'<h2>Step <span class="mono">{escape(p.name)}</span></h2>'
    if original is None:
        body = f'<div class="instr">{escape(final)}</div>'
        note = "the original instruction is not recorded in this artifact"
    elif changed(original, final):
        body = f'<div class="instr diff">{word_diff_html(original, final)}</div>'
        note = "final instruction: <ins>added</ins> and <del>removed</del> words against the original"
    else:
        body = f'<div class="instr">{escape(final)}</div>'
        note = "the instruction is unchanged"
    parts = [head, f'<h3>Instruction <span class="muted">({note})</span></h3>', body,
             _runners_up(p.name, final, trials),
             demos_table(p)]
    return "\n".join(parts)


def _runners_up(name: str, final: str, trials: Sequence[Mapping[str, Any]]) -> str:
    """Other instructions tried for this predictor, each with its best score."""
    best: dict[str, tuple[tuple[bool, float], Mapping[str, Any]]] = {}
    for t in trials:
        text, score = instructions_of(t).get(name), t.get("score")
        if text is None or score is None or not changed(text, final):
            continue
        key = " ".join(text.split())
        rank = (bool(t.get("full_eval", True)), float(score))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, t)
    if not best:
        return ""
    ranked = sorted(best.items(), key=lambda kv: kv[1][0], reverse=True)[:RUNNERS_UP]
    rows = []
    for text, ((full, score), t) in ranked:
        where = footing(True, full, int(t.get("n", 0) or 0))
        rows.append(f'<tr><td class=n>{score:.3f}</td><td>{escape(where)}</td>'
                    f'<td class=n><a href="#trial-{t["index"]}">{t["index"]}</a></td>'
                    f'<td class="v"><div>{escape(text)}</div></td></tr>')
    return (f"<h3>Runner-up instructions <span class=\"muted\">({len(best)} other instruction(s) scored; "
            "best score of each)</span></h3><table><thead><tr><th>score</th><th>on</th><th>trial</th>"
            f"<th>instruction</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
