"""Benchmark `promptc compile` on Banking77 (77 intents): every optimizer, before and after.

    python scripts/bench_compile.py --data ../shared/datasets/banking77
    python scripts/bench_compile.py --data ../shared/datasets/banking77 --server      # also via HTTP
    python scripts/bench_compile.py --data ... --dspy-python /tmp/dspy-venv/bin/python  # DSPy beside it

With the built-in offline LM, which demos are in the prompt decides which of the 77 intents
it can answer at all, so the optimizers' choices show directly in the held-out score.
`--server` runs the same compiles through the fake OpenAI-compatible server (the offline
LM's logic behind real HTTP) to count requests and time them. `--dspy-python` runs DSPy's
LabeledFewShot / BootstrapFewShot / BootstrapFewShotWithRandomSearch on the same data and
the same fake endpoint, from a separate virtualenv (DSPy is never a promptc dependency).

Data: Banking77 (PolyAI, CC BY 4.0): folder with train.csv, test.csv, categories.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# 77 labels: a prompt needs on the order of 100+ demos before every intent can be shown.
OPTIMIZERS = {
    # score_dev: the few-shot optimizers score dev only when asked, and this table shows it.
    "labeled_few_shot": "{name: labeled_few_shot, k: 160, score_dev: true}",
    "bootstrap_few_shot": "{name: bootstrap_few_shot, max_bootstrapped_demos: 40, max_labeled_demos: 160, "
                          "score_dev: true}",
    "random_search": "{name: random_search, num_candidates: 6, max_bootstrapped_demos: 40, max_labeled_demos: 160}",
    "mipro": "{name: mipro, auto: light, max_bootstrapped_demos: 40, max_labeled_demos: 160}",
}


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{"text": r["text"], "intent": r["category"]} for r in csv.DictReader(fh)]


def prepare(data: Path, work: Path, n_train: int, n_dev: int, n_test: int, seed: int) -> tuple[list[str], dict]:
    if not (data / "train.csv").exists():
        raise SystemExit(f"{data}/train.csv not found. Banking77 (PolyAI-LDN/task-specific-datasets, CC BY 4.0) "
                         "lives in ../shared/datasets/banking77 on this workplace; pass --data FOLDER.")
    labels = json.loads((data / "categories.json").read_text())
    rng = random.Random(seed)
    train_rows = rng.sample(read_csv(data / "train.csv"), n_train + n_dev)
    test_rows = rng.sample(read_csv(data / "test.csv"), n_test)
    files = {"train": train_rows[:n_train], "dev": train_rows[n_train:], "test": test_rows}
    paths = {}
    for name, rows in files.items():
        paths[name] = work / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return labels, paths


def spec_text(labels: list[str], optimizer: str, lm: str) -> str:
    return f"""version: 1
name: banking77
{lm}signatures:
  classify:
    instructions: Classify the banking customer's query into one of 77 intents.
    inputs: {{text: str}}
    outputs:
      intent: {{type: enum, values: {json.dumps(labels)}}}
program:
  - step: classify
    signature: classify
metric: {{type: label_accuracy, field: intent}}
optimizer: {optimizer}
"""


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promptc", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT)


def held_out(spec: Path, program: Path | None, test: Path, env: dict[str, str], work: Path) -> float:
    report = work / "r.json"
    args = ["eval", str(spec), "--data", str(test), "--report", str(report)] + (
        ["--program", str(program)] if program else [])
    result = cli(*args, env=env)
    if result.returncode not in (0, 1):
        raise SystemExit(result.stderr)
    return json.loads(report.read_text())["summary"]["mean"]


def run_promptc(labels: list[str], paths: dict, work: Path, lm: str, env: dict[str, str], title: str,
                server_count=None) -> None:  # type: ignore[no-untyped-def]
    print(f"\n## promptc on {title}")
    print(f"{'optimizer':>19} {'dev before':>10} {'dev after':>9} {'test before':>11} {'test after':>10} "
          f"{'LM calls':>8} {'HTTP req':>8} {'tokens':>10} {'wall s':>7}")
    for name, block in OPTIMIZERS.items():
        spec = work / f"{name}.yaml"
        spec.write_text(spec_text(labels, block, lm))
        out = work / f"build-{name}"
        before_requests = server_count() if server_count else 0
        start = time.perf_counter()
        result = cli("compile", str(spec), "--train", str(paths["train"]), "--dev", str(paths["dev"]),
                     "--out", str(out), "--no-cache", env=env)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            print(result.stderr[-2000:])
            raise SystemExit(f"compile with {name} failed")
        requests = (server_count() - before_requests) if server_count else 0
        prov = json.loads((out / "program.json").read_text())["provenance"]
        usage = prov["usage"]
        test_before = held_out(spec, None, paths["test"], env, work)
        test_after = held_out(spec, out, paths["test"], env, work)
        print(f"{name:>19} {_score(prov['dev_score_before']):>10} {_score(prov['dev_score_after']):>9} "
              f"{test_before:>11.3f} "
              f"{test_after:>10.3f} {usage['calls']:>8} {requests:>8} "
              f"{usage['prompt_tokens'] + usage['completion_tokens']:>10,} {wall:>7.1f}")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_dspy(python: str, paths: dict, labels: list[str], base_url: str) -> None:
    script = ROOT / "scripts" / "dspy_banking77.py"
    print("\n## DSPy on the same data and fake endpoint (separate virtualenv)")
    result = subprocess.run([python, str(script), "--train", str(paths["train"]), "--dev", str(paths["dev"]),
                             "--test", str(paths["test"]), "--labels", json.dumps(labels),
                             "--base-url", base_url], capture_output=True, text=True)
    rows = [line[6:] for line in result.stdout.splitlines() if line.startswith("TABLE ")]
    print("\n".join(rows) if len(rows) > 1 else result.stderr[-3000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "banking77")
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--dev", type=int, default=150)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", action="store_true", help="also compile through the fake HTTP server")
    parser.add_argument("--dspy-python", help="python of a virtualenv with dspy installed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        labels, paths = prepare(args.data, work, args.train, args.dev, args.test, args.seed)
        env = {"PROMPTC_CACHE_DIR": str(work / "cache"), "BENCH_KEY": "sk-bench"}
        print(f"Banking77: {len(labels)} intents; {args.train} train, {args.dev} dev (from train.csv), "
              f"{args.test} held-out test (from test.csv); seed {args.seed}")
        run_promptc(labels, paths, work, "", env, "the built-in offline LM")
        if args.server or args.dspy_python:
            from promptc.testing import FakeOpenAIServer

            with FakeOpenAIServer(record=False) as srv:
                lm = f'lm: {{model: fake-model, base_url: "{srv.base_url}", api_key_env: BENCH_KEY, concurrency: 16}}\n'
                if args.server:
                    run_promptc(labels, paths, work, lm, env, "the fake server (offline logic over HTTP)",
                                server_count=lambda: srv.request_count)
                if args.dspy_python:
                    before = srv.request_count
                    run_dspy(args.dspy_python, paths, labels, srv.base_url)
                    print(f"(DSPy sent {srv.request_count - before} HTTP requests in all)")


if __name__ == "__main__":
    main()
