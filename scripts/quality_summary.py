"""The summary of scripts/bench_quality.py: per-optimizer figures, DSPy beside them, issue 9's targets.

Pure functions over the result rows the benchmark writes, so a results file can be
summarized again without rerunning anything.
"""

from __future__ import annotations

import statistics
from typing import Any

BASELINE = "zero_shot_cot"
# The counterpart of each promptc optimizer in dspy_reference.py's runs.
DSPY_RUN = {BASELINE: "cot", "labeled_few_shot": "labeled", "bootstrap_few_shot": "bootstrap",
            "random_search": "random_search", "mipro": "mipro"}
# Issue 9's reference figures (DSPy 3.4.1 on sim-medium), used when no DSPy results are given.
REFERENCE = {"cot": (0.533, 0.0), "bootstrap": (0.773, 6.0), "mipro": (0.793, 690.0)}
SPREAD_MAX = 0.05  # seed spread, max - min
MIPRO_MARGIN = 0.03  # best optimizer >= DSPy MIPROv2-light mean + 3 points ...
MIPRO_REQUEST_SHARE = 0.5  # ... with at most half its compile requests
BOOTSTRAP_MAX_REQUESTS = 50


def dspy_figures(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per DSPy run: held-out accuracies (one per run), their mean, mean compile requests."""
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        fig = out.setdefault(r["run"], {"accuracies": [], "requests": [], "source": "measured"})
        fig["accuracies"].append(r["test_accuracy"])
        fig["requests"].append(r["compile"]["requests"])
    for fig in out.values():
        fig["mean"] = statistics.fmean(fig["accuracies"])
        fig["mean_requests"] = statistics.fmean(fig["requests"])
    for run, (acc, req) in REFERENCE.items():
        out.setdefault(run, {"accuracies": [acc], "requests": [req], "mean": acc, "mean_requests": req,
                             "source": "issue 9 reference"})
    return out


# -- summary -----------------------------------------------------------------------------

def summarize(rows: list[dict[str, Any]], seeds: list[int], dspy: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per optimizer: mean, spread, per-seed values, requests, and the issue-9 targets."""
    base_rows = [r for r in rows if r["optimizer"] == BASELINE]
    base = base_rows[0]["held_out"] if base_rows else None
    summary: dict[str, Any] = {"baseline": base, "optimizers": {},
                               "runs": [r for r in rows if r["optimizer"] == BASELINE or r["seed"] in seeds]}
    for name in dict.fromkeys(r["optimizer"] for r in rows):
        mine = sorted((r for r in rows if r["optimizer"] == name), key=lambda r: r["seed"])
        if name != BASELINE:
            mine = [r for r in mine if r["seed"] in seeds]
        values = [r["held_out"] for r in mine]
        mean = statistics.fmean(values)
        requests = statistics.fmean(r["compile_requests"] for r in mine)
        kinds: dict[str, float] = {}
        for r in mine:
            for kind, n in r.get("requests_by_kind", {}).items():
                kinds[kind] = kinds.get(kind, 0) + n / len(mine)
        entry = {
            "seeds": [r["seed"] for r in mine], "held_out": values, "mean": mean,
            "spread": max(values) - min(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "compile_requests": requests, "eval_requests": statistics.fmean(r["eval_requests"] for r in mine),
            "requests_by_kind": {k: round(v, 1) for k, v in kinds.items()},
            # points of held-out accuracy gained over zero-shot CoT per 100 compile requests
            "gain_per_100_requests": (100 * (mean - base) / requests * 100) if base is not None and requests else None,
        }
        if name != BASELINE:
            entry["above_baseline_every_seed"] = base is not None and all(v >= base for v in values)
            entry["spread_ok"] = entry["spread"] <= SPREAD_MAX + 1e-9
            mipro = dspy["mipro"]
            entry["beats_mipro"] = (mean >= mipro["mean"] + MIPRO_MARGIN - 1e-9
                                    and requests <= MIPRO_REQUEST_SHARE * mipro["mean_requests"])
        summary["optimizers"][name] = entry
    tuned = {k: v for k, v in summary["optimizers"].items() if k != BASELINE}
    if tuned:
        best = max(tuned, key=lambda k: tuned[k]["mean"])
        summary["best"] = best
        summary["target_best_beats_mipro"] = tuned[best]["beats_mipro"]
    if "bootstrap_few_shot" in tuned:
        b, ref = tuned["bootstrap_few_shot"], dspy["bootstrap"]
        summary["target_bootstrap"] = (b["mean"] >= ref["mean"] - 1e-9
                                       and b["compile_requests"] <= BOOTSTRAP_MAX_REQUESTS)
    summary["dspy"] = dspy
    return summary


def _yn(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "NO")


def render(summary: dict[str, Any], setting: str) -> str:
    """The tables the README quotes: promptc per optimizer, DSPy, ratios, targets.

    `setting` is the first line: which LM, data sizes and seeds.
    """
    out = [setting,
           "held-out accuracy over every test row (a failed row counts as wrong); requests counted at the server",
           ""]
    hdr = (f"{'optimizer':<20} {'mean':>6} {'spread':>6} {'std':>6}  {'per seed':<23} {'compile req':>11} "
           f"{'pts/100req':>10}  {'>=CoT':>5} {'spread<=5':>9} {'>=MIPRO+3@50%':>13}")
    out += [hdr, "-" * len(hdr)]
    for name, e in summary["optimizers"].items():
        per_seed = " ".join(f"{v:.3f}" for v in e["held_out"])
        if name == BASELINE:
            per_seed = f"{per_seed} (all seeds)"
        gain = "-" if e["gain_per_100_requests"] is None else f"{e['gain_per_100_requests']:.2f}"
        out.append(f"{name:<20} {e['mean']:6.3f} {e['spread']:6.3f} {e['std']:6.3f}  {per_seed:<23} "
                   f"{e['compile_requests']:11.0f} {gain:>10}  {_yn(e.get('above_baseline_every_seed')):>5} "
                   f"{_yn(e.get('spread_ok')):>9} {_yn(e.get('beats_mipro')):>13}")
    out.append("pts/100req: points of held-out accuracy gained over zero-shot CoT per 100 compile requests")
    out += ["", "where compile requests go (mean per compile; trial kinds include building the candidate):"]
    for name, e in summary["optimizers"].items():
        if e["requests_by_kind"]:
            out.append(f"  {name}: " + ", ".join(f"{k} {v:.0f}" for k, v in e["requests_by_kind"].items()))
    out += ["", "what each compile chose (dev before -> after; demos, with reasoning; instructions):"]
    for r in summary.get("runs", []):
        if r["optimizer"] == BASELINE:
            continue
        for name, p in r["program"].items():
            before, after = r.get("dev_before"), r.get("dev_after")
            dev = f"{before:.3f} -> {after:.3f}" if before is not None and after is not None else "-"
            text = " ".join(p["instructions"].split())
            out.append(f"  {r['optimizer']} seed {r['seed']} {name}: dev {dev}; best trial {r.get('best_trial')}; "
                       f"{p['n_demos']} demos, {p['n_demos_with_reasoning']} with reasoning; "
                       f"{(text[:100] + '...') if len(text) > 100 else (text or '(no instructions)')}")
    dspy = summary["dspy"]
    out += ["", f"{'DSPy run':<20} {'mean':>6}  {'per run':<23} {'compile req':>11}  source"]
    for run, f in dspy.items():
        accs = " ".join(f"{a:.3f}" for a in f["accuracies"])
        out.append(f"{run:<20} {f['mean']:6.3f}  {accs:<23} {f['mean_requests']:11.0f}  {f['source']}")
    out += ["", f"{'promptc / DSPy':<20} {'vs':<14} {'accuracy':>8} {'requests':>9}   "
                f"{'vs MIPROv2':>10} {'accuracy':>8} {'requests':>9}"]
    mipro = dspy["mipro"]
    for name, e in summary["optimizers"].items():
        run = DSPY_RUN.get(name)
        twin = dspy.get(run) if run else None
        acc = f"{e['mean'] / twin['mean']:.3f}" if twin else "-"
        req = f"{e['compile_requests'] / twin['mean_requests']:.3f}" if twin and twin["mean_requests"] else "-"
        out.append(f"{name:<20} {(run if twin else '-'):<14} {acc:>8} {req:>9}   {'':>10} "
                   f"{e['mean'] / mipro['mean']:8.3f} {e['compile_requests'] / mipro['mean_requests']:9.3f}")
    out += ["", "targets (issue 9):"]
    for name, e in summary["optimizers"].items():
        if name != BASELINE:
            out.append(f"  {name}: >= zero-shot CoT on every seed: {_yn(e['above_baseline_every_seed'])}; "
                       f"seed spread <= 5 points: {_yn(e['spread_ok'])} ({100 * e['spread']:.1f})")
    if "best" in summary:
        best = summary["optimizers"][summary["best"]]
        out.append(f"  best optimizer {summary['best']}: {best['mean']:.3f} with {best['compile_requests']:.0f} "
                   f"requests vs DSPy MIPROv2-light {mipro['mean']:.3f} + 0.030 = {mipro['mean'] + MIPRO_MARGIN:.3f} "
                   f"with <= {MIPRO_REQUEST_SHARE * mipro['mean_requests']:.0f}: "
                   f"{_yn(summary['target_best_beats_mipro'])}")
        acc, req = REFERENCE["mipro"]
        fixed = best["mean"] >= acc + MIPRO_MARGIN - 1e-9 and best["compile_requests"] <= MIPRO_REQUEST_SHARE * req
        out.append(f"  (against issue 9's fixed figures: >= {acc + MIPRO_MARGIN:.3f} with <= "
                   f"{MIPRO_REQUEST_SHARE * req:.0f} requests: {_yn(fixed)})")
    if "target_bootstrap" in summary:
        b, ref = summary["optimizers"]["bootstrap_few_shot"], dspy["bootstrap"]
        out.append(f"  bootstrap_few_shot: {b['mean']:.3f} with {b['compile_requests']:.0f} requests vs DSPy "
                   f"BootstrapFewShot {ref['mean']:.3f} with <= {BOOTSTRAP_MAX_REQUESTS}: "
                   f"{_yn(summary['target_bootstrap'])}")
    return "\n".join(out)
