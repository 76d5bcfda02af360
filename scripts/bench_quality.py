"""Held-out quality of every optimizer against the benchmark LM, seed by seed, beside DSPy.

    python scripts/bench_quality.py --url http://127.0.0.1:8765/v1 --data ~/.cache/benchlm
    python scripts/bench_quality.py --url ... --data ... --optimizers bootstrap_few_shot,mipro --seeds 0
    python scripts/bench_quality.py --url ... --data ... --dspy-python /tmp/dspy-venv/bin/python
    python scripts/bench_quality.py --url ... --data ... --dspy-results /tmp/dspy_ref_seed0.json,...

For each optimizer and seed: a chain-of-thought spec (`question -> answer: float`,
numeric_match, temperature 0) is compiled through `promptc.compile` on the first
--train-n rows of train.jsonl with the first --dev-n rows of dev.jsonl, with a fresh LM
cache (every request is really sent), then scored with `promptc.evaluate` on the first
--test-n rows of test.jsonl. Requests are counted at the server (`GET /stats` before and
after), not by promptc. Zero-shot CoT (the spec as written, nothing compiled) is the
baseline; at temperature 0 it is the same program for every seed, so it is evaluated once.

Held-out accuracy counts every test row: a row that failed (no parseable answer, an LM
error) counts as wrong. Count on a server nobody else is using: /stats counts everyone's
requests (the script warns when the server's count and promptc's own disagree).

The benchmark LM is a development instrument (../shared/benchlm), never a test
dependency: this script takes its URL and data folder as arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):  # promptc, and quality_summary beside this file
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from quality_summary import BASELINE, DSPY_RUN, dspy_figures, render, summarize  # noqa: E402

KEY_ENV = "BENCH_KEY"

Counter = Callable[[], int]  # the server's request count so far


class BenchError(Exception):
    """A problem with the arguments or the data: printed as one message, exit 2."""

    exit_code = 2


class ServerUnreachable(BenchError):
    """The benchmark LM does not answer: exit 3, like promptc's LM failures."""

    exit_code = 3


@dataclass
class Bench:
    """What to run: the LM, the data, the optimizers and the seeds."""

    url: str
    model: str
    train: list[dict[str, Any]]
    dev: list[dict[str, Any]]
    test: list[dict[str, Any]]
    optimizers: list[str]
    seeds: list[int]
    concurrency: int = 8
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)


# -- inputs ------------------------------------------------------------------------------

def read_rows(folder: Path, split: str, n: int) -> list[dict[str, Any]]:
    """The first `n` rows of FOLDER/SPLIT.jsonl as {question, answer}."""
    path = folder / f"{split}.jsonl"
    if not path.is_file():
        raise BenchError(f"{path} not found: --data must be a folder with train.jsonl, dev.jsonl and test.jsonl "
                         "(the benchmark LM writes them to ~/.cache/benchlm on its first start)")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if len(rows) >= n:
                break
            if line.strip():
                try:
                    row = json.loads(line)
                    rows.append({"question": row["question"], "answer": row["answer"]})
                except (ValueError, KeyError, TypeError) as exc:
                    raise BenchError(f"{path}:{number}: not a {{question, answer}} row ({exc})") from None
    if not rows:
        raise BenchError(f"{path} has no rows")
    return rows


def stats_url(url: str) -> str:
    return url.rstrip("/").removesuffix("/v1") + "/stats"


def stats_counter(url: str) -> Counter:
    """The server's request count via GET /stats; BenchError when the server cannot be reached."""
    def count() -> int:
        try:
            with urllib.request.urlopen(stats_url(url), timeout=10) as reply:
                return int(json.loads(reply.read())["requests"])
        except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(f"cannot read the benchmark LM's request count at {stats_url(url)}: {reason}. "
                             "Is it running? Start it with `python ../shared/benchlm/serve.py --port 8765` "
                             "and pass its base URL as --url (e.g. http://127.0.0.1:8765/v1).") from None
    return count


def spec_text(url: str, model: str) -> str:
    return f"""version: 1
name: gsm
lm: {{model: {json.dumps(model)}, base_url: {json.dumps(url)}, api_key_env: {KEY_ENV}, temperature: 0}}
program:
  - step: solve
    module: chain_of_thought
    signature: "question -> answer: float"
metric: {{type: numeric_match, field: answer}}
"""


# -- one run -----------------------------------------------------------------------------

def run_one(bench: Bench, optimizer: str, seed: int, count: Counter) -> dict[str, Any]:
    """Compile with `optimizer` (nothing for the baseline), then score on the held-out rows."""
    import promptc

    os.environ.setdefault(KEY_ENV, "bench")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        spec = Path(tmp) / "gsm.yaml"
        spec.write_text(spec_text(bench.url, bench.model), encoding="utf-8")
        loaded = promptc.load_program(spec, cache_dir=Path(tmp) / "cache", concurrency=bench.concurrency)
        with loaded:
            row: dict[str, Any] = {"optimizer": optimizer, "seed": seed}
            program = loaded
            before, start = count(), time.perf_counter()
            if optimizer != BASELINE:
                result = promptc.compile(loaded, bench.train, bench.dev, optimizer=optimizer, seed=seed,
                                         settings=bench.settings.get(optimizer, {}),
                                         concurrency=bench.concurrency)
                program = result.program
                row.update(compile_facts(result))
            row["compile_requests"] = count() - before
            row["compile_seconds"] = round(time.perf_counter() - start, 1)
            before, start = count(), time.perf_counter()
            evaluated = promptc.evaluate(program, bench.test, concurrency=bench.concurrency)
            row["eval_requests"] = count() - before
            row["eval_seconds"] = round(time.perf_counter() - start, 1)
            records = evaluated.records
            row["held_out"] = sum(r.score or 0.0 for r in records) / len(records)
            row["held_out_errors"] = sum(1 for r in records if r.error is not None)
            row["eval_requests_promptc"] = evaluated.summary.usage.requests
            row["program"] = describe(program.program)
    return row


def compile_facts(result: Any) -> dict[str, Any]:
    """What the compile chose and where its requests went (by trial kind; `setup` = outside trials)."""
    by_kind: dict[str, int] = {}
    for trial in result.trials:
        by_kind[trial.kind] = by_kind.get(trial.kind, 0) + trial.usage.requests
    by_kind["setup"] = result.usage.requests - sum(by_kind.values())
    best = result.best
    return {"compile_requests_promptc": result.usage.requests, "requests_by_kind": by_kind,
            "dev_before": result.score_before, "dev_after": result.score_after,
            "trials": len(result.trials), "best_trial": best.kind if best else None,
            "stopped": result.stopped}


def describe(program: Any) -> dict[str, Any]:
    """Demos and instructions of each predictor."""
    out = {}
    for name, state in program.state().items():
        out[name] = {"n_demos": len(state.demos),
                     "n_demos_with_reasoning": sum(1 for d in state.demos if d.get("reasoning")),
                     "instructions": state.instructions}
    return out


def run_all(bench: Bench, count: Counter, done: list[dict[str, Any]] | None = None,
            on_row: Callable[[list[dict[str, Any]]], None] | None = None) -> list[dict[str, Any]]:
    """Every optimizer x seed (the baseline once), skipping rows already in `done`."""
    rows = list(done or [])
    have = {(r["optimizer"], r["seed"]) for r in rows}
    plan = [(BASELINE, bench.seeds[0])] + [(o, s) for o in bench.optimizers if o != BASELINE for s in bench.seeds]
    for optimizer, seed in plan:
        if (optimizer, seed) in have:
            continue
        bench.log(f"[{time.strftime('%H:%M:%S')}] {optimizer} seed {seed} ...")
        row = run_one(bench, optimizer, seed, count)
        bench.log(f"    held-out {row['held_out']:.3f}; compile {row['compile_requests']} requests "
                  f"({row['compile_seconds']} s); eval {row['eval_requests']} requests")
        own = row.get("compile_requests_promptc", 0) + row["eval_requests_promptc"]
        if own != row["compile_requests"] + row["eval_requests"]:
            bench.log(f"    note: the server counted {row['compile_requests'] + row['eval_requests']} requests, "
                      f"promptc sent {own}: is another client using this server?")
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    return rows


# -- DSPy --------------------------------------------------------------------------------

def run_dspy(python: str, script: Path, bench: Bench, data: Path, out_dir: Path) -> list[dict[str, Any]]:
    """dspy_reference.py on the same server and splits: cot, bootstrap, mipro (the targets) and
    the counterparts of the optimizers benchmarked; mipro once per seed (the others do not
    take one: at temperature 0 they are deterministic). Its result rows, tagged with the seed."""
    if not Path(python).exists():
        raise BenchError(f"--dspy-python {python}: no such interpreter")
    if not script.is_file():
        raise BenchError(f"--dspy-script {script}: not found")
    wanted = {"cot", "bootstrap", "mipro", *(DSPY_RUN[o] for o in bench.optimizers if o in DSPY_RUN)}
    runs = [r for r in ("cot", "labeled", "bootstrap", "random_search", "mipro") if r in wanted]
    results: list[dict[str, Any]] = []
    for i, seed in enumerate(bench.seeds):
        out = out_dir / f"dspy-seed{seed}.json"
        args = [python, str(script), "--api-base", bench.url, "--model", bench.model,
                "--runs", ",".join(runs if i == 0 else ["mipro"]), "--seed", str(seed),
                "--n-test", str(len(bench.test)), "--mipro-train", str(len(bench.train)),
                "--mipro-val", str(len(bench.dev)), "--threads", str(bench.concurrency), "--out", str(out)]
        if (data / "world.jsonl").is_file():
            args += ["--world", str(data / "world.jsonl")]
        bench.log(f"[{time.strftime('%H:%M:%S')}] DSPy {' '.join(args[3:])}")
        with open(out_dir / f"dspy-seed{seed}.log", "w") as log:
            done = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, cwd=script.parent)
        if done.returncode != 0:
            raise BenchError(f"dspy_reference.py failed (exit {done.returncode}); see {log.name}")
        results += load_dspy([out])
    return results


def load_dspy(paths: list[Path]) -> list[dict[str, Any]]:
    """Result rows of dspy_reference.py output files, each with the seed it ran with."""
    rows = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read DSPy results {path}: {exc}") from None
        seed = doc.get("meta", {}).get("args", {}).get("seed")
        rows += [{**r, "seed": seed, "file": str(path)} for r in doc.get("results", [])]
    return rows


# -- command line ------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from promptc.optimize.registry import optimizer_classes

    names = [BASELINE, *optimizer_classes()]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the benchmark LM's base URL, e.g. http://127.0.0.1:8765/v1")
    p.add_argument("--data", required=True, type=Path, help="folder with train.jsonl, dev.jsonl, test.jsonl")
    p.add_argument("--model", default="sim-medium")
    p.add_argument("--optimizers", default=",".join(names),
                   help=f"comma list (default: all of {', '.join(names)}); {BASELINE} always runs")
    p.add_argument("--settings", default="{}", help='JSON: optimizer -> settings, e.g. \'{"mipro": {"auto": "light"}}\'')
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train-n", type=int, default=200)
    p.add_argument("--dev-n", type=int, default=300)
    p.add_argument("--test-n", type=int, default=300, help="held out: the first N rows of test.jsonl")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("results.json"), help="JSON results, rewritten after each run")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out and do the rest")
    p.add_argument("--dspy-python", help="python of a virtualenv with DSPy: run dspy_reference.py beside promptc")
    p.add_argument("--dspy-script", type=Path, default=ROOT.parent / "shared" / "benchlm" / "dspy_reference.py")
    p.add_argument("--dspy-results", default="", help="comma list of dspy_reference.py output files to compare with")
    args = p.parse_args(argv)
    args.known = names
    return args


def build(args: argparse.Namespace) -> Bench:
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    unknown = [o for o in optimizers if o not in args.known]
    if unknown:
        raise BenchError(f"unknown optimizer(s) {', '.join(unknown)}; have: {', '.join(args.known)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        settings = json.loads(args.settings)
    except ValueError as exc:
        raise BenchError(f"bad --seeds or --settings: {exc}") from None
    if not seeds:
        raise BenchError("--seeds is empty")
    if not args.data.is_dir():
        raise BenchError(f"--data {args.data}: no such folder (it must hold train.jsonl, dev.jsonl, test.jsonl)")
    return Bench(url=args.url, model=args.model, train=read_rows(args.data, "train", args.train_n),
                 dev=read_rows(args.data, "dev", args.dev_n), test=read_rows(args.data, "test", args.test_n),
                 optimizers=[o for o in optimizers if o != BASELINE], seeds=seeds,
                 concurrency=args.concurrency, settings=settings)


def setting(bench: Bench) -> str:
    return (f"promptc on {bench.model} at {bench.url}: train {len(bench.train)}, dev {len(bench.dev)}, "
            f"held-out {len(bench.test)} (first rows of test.jsonl); seeds {','.join(map(str, bench.seeds))}")


def write(out: Path, bench: Bench, rows: list[dict[str, Any]], dspy_rows: list[dict[str, Any]],
          summary: Mapping[str, Any] | None = None) -> None:
    meta = {"url": bench.url, "model": bench.model, "train": len(bench.train), "dev": len(bench.dev),
            "test": len(bench.test), "seeds": bench.seeds, "optimizers": bench.optimizers,
            "settings": bench.settings, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    if summary is not None:
        summary = {k: v for k, v in summary.items() if k != "runs"}  # already under "runs"
    doc = {"meta": meta, "runs": rows, "dspy": dspy_rows, "summary": summary}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    tmp.replace(out)


def main(argv: list[str] | None = None, count: Counter | None = None) -> int:
    args = parse_args(argv)
    try:
        bench = build(args)
        count = count or stats_counter(bench.url)
        count()  # fail now, not after the first compile
        done = []
        if args.resume and args.out.exists():
            done = json.loads(args.out.read_text()).get("runs", [])
        dspy_rows = load_dspy([Path(p) for p in args.dspy_results.split(",") if p.strip()])
        rows = run_all(bench, count, done, on_row=lambda rows: write(args.out, bench, rows, dspy_rows))
        if args.dspy_python:
            dspy_rows += run_dspy(args.dspy_python, args.dspy_script, bench, args.data,
                                  args.out.resolve().parent)
        summary = summarize(rows, bench.seeds, dspy_figures(dspy_rows))
        write(args.out, bench, rows, dspy_rows, summary)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        from promptc.errors import PromptcError

        if not isinstance(exc, PromptcError):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    print(render(summary, setting(bench)))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
