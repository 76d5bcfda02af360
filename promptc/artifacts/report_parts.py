"""Tables and cards of the compile report (compile_report.py puts them together)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlparse

from promptc.artifacts.program_file import PredictorArtifact, ProgramArtifact
from promptc.artifacts.trial_text import changed_instructions, footing, shorten

MAX_DEMOS = 50

CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--bar:#0969da;--sub:#8250df;--insbg:#dafbe1;--delbg:#ffebe9}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#8d96a0;--line:#30363d;--bg:#0d1117;--alt:#161b22;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--bar:#4493f8;--sub:#a371f7;--insbg:#033a16;--delbg:#67060c}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}h3{font-size:14px;margin:16px 0 6px}
.muted{color:var(--muted)}.warn{color:var(--warn)}.mono,td.v{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px;margin-top:16px}
.card{border:1px solid var(--line);border-radius:6px;padding:10px 12px}
.card b{display:block;font-size:18px}.card span{color:var(--muted);font-size:12px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--alt);white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.v div{white-space:pre-wrap;word-break:break-word;max-height:9em;overflow:auto;min-width:10em}
tr:target td{background:var(--alt);outline:1px solid var(--bar)}
tr.best td:first-child{box-shadow:inset 3px 0 var(--ok)}
.instr{white-space:pre-wrap;word-break:break-word;border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:var(--alt)}
ins{background:var(--insbg);text-decoration:none}del{background:var(--delbg);color:var(--muted)}
figure.chart{margin:8px 0 16px}
svg text{fill:var(--muted);font-size:11px}svg .axis{stroke:var(--line)}svg .grid{stroke:var(--line);stroke-dasharray:2 3}
svg .best{fill:none;stroke-width:1.5}svg .best.dev{stroke:var(--bar)}svg .best.subset{stroke:var(--sub);stroke-dasharray:5 3}
svg .pt.full{fill:var(--bar)}svg .pt.subset{fill:var(--bg);stroke:var(--sub);stroke-width:1.5}svg .pt.unscored{fill:var(--muted)}
svg .chosen{fill:none;stroke:var(--ok);stroke-width:2}svg line.stop{stroke:var(--bad);stroke-dasharray:4 3}svg text.stop{fill:var(--bad)}
svg a:hover circle.pt{stroke:var(--fg);stroke-width:2}
.legend span{margin-right:16px;white-space:nowrap;font-size:12px}
.legend i{display:inline-block;vertical-align:middle;margin-right:5px}
.sw{width:10px;height:10px;border-radius:50%}.sw.full{background:var(--bar)}.sw.subset{border:1.5px solid var(--sub)}
.sw.unscored{background:var(--muted);width:7px;height:7px}.sw.chosen{border:2px solid var(--ok)}
.ln{width:18px;height:0;border-top:2px solid var(--bar)}.ln.subset{border-top:2px dashed var(--sub)}
"""


def card_grid(prov: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]) -> str:
    usage = prov.get("usage") or {}
    before, after = prov.get("dev_score_before"), prov.get("dev_score_after")
    tokens = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
    cards = [(f"{_num(before)} → {_num(after)}", "dev score before → after"),
             (f"{len(trials):,}", "trials"),
             (f"{int(usage.get('calls', 0)):,}", f"LM calls ({int(usage.get('requests', 0)):,} requests, "
              f"{int(usage.get('cache_hits', 0)):,} cached)"),
             (f"{tokens:,}", f"tokens ({int(usage.get('prompt_tokens', 0)):,} prompt + "
              f"{int(usage.get('completion_tokens', 0)):,} completion)"),
             (f"${float(usage.get('cost', 0.0)):.4f}", "cost"),
             (f"{sum(float(t.get('seconds', 0) or 0) for t in trials):.1f} s", "time in trials")]
    body = "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for v, k in cards)
    return f'<div class="cards">{body}</div>'


def _num(score: Any) -> str:
    return f"{score:.3f}" if isinstance(score, (int, float)) else "-"


def demos_table(p: PredictorArtifact) -> str:
    """The chosen demos: inputs, reasoning and outputs, one row each."""
    demos = p.selector.pool if p.selector is not None else p.demos
    if not demos:
        return '<h3>Demos</h3><p class="muted">None: this step runs zero-shot.</p>'
    inputs = [f.name for f in p.signature.inputs]
    outputs = [f.name for f in p.signature.outputs]
    extra = sorted({k for d in demos for k in d} - set(inputs) - set(outputs))  # e.g. reasoning
    columns = inputs + [k for k in extra if k == "reasoning"] + outputs
    what = (f"a pool of {len(demos)}; each call shows the {p.selector.k} nearest its inputs"
            if p.selector is not None else f"{len(demos)} shown in every prompt")
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    rows = ["<tr>" + "".join(f'<td class="v"><div>{escape(_text(d.get(c, "")))}</div></td>' for c in columns)
            + "</tr>" for d in demos[:MAX_DEMOS]]
    more = f'<p class="muted">… and {len(demos) - MAX_DEMOS} more in program.json.</p>' if len(demos) > MAX_DEMOS else ""
    return (f'<h3>Demos <span class="muted">({escape(what)})</span></h3>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def trials_table(trials: Sequence[Mapping[str, Any]], spent: Sequence[tuple[int, float]],
                 original: Mapping[str, str], best: Any) -> str:
    rows = []
    for t, (calls, cost) in zip(trials, spent, strict=True):
        score = t.get("score")
        where = footing(score is not None, bool(t.get("full_eval", True)), int(t.get("n", 0) or 0))
        state = {k: str(v.get("instructions", "")) for k, v in (t.get("state") or {}).items() if isinstance(v, dict)}
        changes = changed_instructions(original, state)
        tried = "; ".join(f"{k}: {shorten(v, 140)}" for k, v in changes.items()) or "original instruction"
        demos = sum(len(v.get("demos") or []) for v in (t.get("state") or {}).values() if isinstance(v, dict))
        cls = ' class="best"' if t["index"] == best else ""
        rows.append(f'<tr id="trial-{t["index"]}"{cls}><td class=n>{t["index"]}</td><td>{escape(str(t.get("kind", "")))}</td>'
                    f"<td class=n>{_num(score)}</td><td>{escape(where)}</td><td class=n>{calls:,}</td>"
                    f"<td class=n>${cost:.4f}</td><td class=n>{float(t.get('seconds', 0) or 0):.1f}</td>"
                    f'<td class="v"><div>{escape(str(t.get("description", "")))}</div></td>'
                    f'<td class="v"><div>{escape(tried)}</div></td><td class=n>{demos}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("#", "kind", "score", "on", "calls so far", "cost so far",
                                             "seconds", "what", "instruction tried", "demos"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def provenance_table(artifact: ProgramArtifact, trials: Sequence[Mapping[str, Any]]) -> str:
    prov = artifact.provenance
    data = prov.get("data") or {}
    usage = prov.get("usage") or {}
    rows: list[tuple[str, str]] = [
        ("program", artifact.name),
        ("promptc version", str(prov.get("promptc_version", artifact.promptc_version))),
        ("spec", f"{prov.get('spec')} (sha256 {prov.get('spec_sha256')})"),
        ("models", _models(artifact)),
        ("train data", f"{data.get('train')} (sha256 {data.get('train_sha256')})"),
        ("dev data", f"{data.get('dev')} (sha256 {data.get('dev_sha256')})" if data.get("dev")
         else str(data.get("dev_split") or "-")),
        ("seed", str(prov.get("seed"))),
        ("optimizer", str(prov.get("optimizer"))),
        ("settings", json.dumps(prov.get("settings", {}), sort_keys=True)),
        ("time", _time(trials)),
        ("LM calls", f"{int(usage.get('calls', 0)):,} ({int(usage.get('requests', 0)):,} HTTP requests, "
                     f"{int(usage.get('cache_hits', 0)):,} cache hits)"),
        ("tokens", f"{int(usage.get('prompt_tokens', 0)):,} prompt + {int(usage.get('completion_tokens', 0)):,} completion"),
        ("cost", f"${float(usage.get('cost', 0.0)):.4f}"),
        ("stopped early", str(prov.get("stopped_early") or "no")),
    ]
    body = "".join(f'<tr><th scope="row">{escape(k)}</th><td class="v"><div>{escape(v)}</div></td></tr>'
                   for k, v in rows)
    return f'<table class="prov"><tbody>{body}</tbody></table>'


def _models(artifact: ProgramArtifact) -> str:
    """Each LM role's model and endpoint host (never a key, nor a URL's credentials)."""
    parts = []
    for role, cfg in artifact.lms.items():
        host = urlparse(cfg.base_url).hostname if cfg.base_url else None
        parts.append(f"{role}: {cfg.model}" + (f" at {host}" if host else ""))
    if artifact.embedder is not None:
        parts.append(f"embedder: {artifact.embedder.model}")
    models = artifact.provenance.get("models")
    if not parts and isinstance(models, dict):
        parts = [f"{k}: {v}" for k, v in models.items()]
    return "; ".join(parts) or "-"


def _time(trials: Sequence[Mapping[str, Any]]) -> str:
    """When the trials ran, from their log times (trial files from before those were kept: '-')."""
    stamps = []
    for t in trials:
        try:
            end = datetime.fromisoformat(str(t.get("finished_at")))
        except ValueError:
            continue
        stamps.append((end - timedelta(seconds=float(t.get("seconds", 0) or 0)), end))
    if not stamps:
        return "-"
    start, end = min(s for s, _ in stamps), max(e for _, e in stamps)
    return (f"{start.isoformat(timespec='seconds')} to {end.isoformat(timespec='seconds')} "
            f"({(end - start).total_seconds():.0f} s wall, resumed runs included)")
