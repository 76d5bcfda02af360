"""Benchmark knn_few_shot on an OpenAI-compatible benchmark LM (e.g. ../shared/benchlm).

    python scripts/bench_knn.py --base-url http://127.0.0.1:8765/v1 --data ~/.cache/benchlm \\
        --seeds 0 1 2 --settings "{k: 8, pool_size: 24}" [--embedder sim-embed] [--test-rows 300]

For each seed: `promptc compile` (a chain-of-thought `question -> answer: float` spec,
numeric match) on train.jsonl with dev.jsonl, in a fresh cache folder so every request is
real, then `promptc eval --program BUILD` on the first --test-rows rows of test.jsonl
from the artifact alone. Prints held-out accuracy and the compile's requests (LM requests
from the artifact's provenance, embeddings requests from the trial's params), then the
mean and spread over seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = """version: 1
name: gsm
lm: {{model: {model}, base_url: "{base_url}", api_key_env: BENCH_KEY, temperature: 0}}
{embedder}program:
  - step: solve
    module: chain_of_thought
    signature: "question -> answer: float"
metric: {{type: numeric_match, field: answer}}
optimizer: {optimizer}
"""


def promptc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_KEY": os.environ.get("BENCH_KEY", "x")}
    return subprocess.run([sys.executable, "-m", "promptc", *args], capture_output=True, text=True, env=env)


def one(work: Path, args: argparse.Namespace, seed: int) -> tuple[float, int, int]:
    settings = args.settings.strip().strip("{}").strip()
    optimizer = "{name: knn_few_shot" + (", " + settings if settings else "") + "}"
    embedder = (f'embedder: {{model: {args.embedder}, base_url: "{args.base_url}", api_key_env: BENCH_KEY}}\n'
                if args.embedder else "")
    spec = work / f"gsm-{seed}.yaml"
    spec.write_text(SPEC.format(model=args.model, base_url=args.base_url, embedder=embedder, optimizer=optimizer))
    data = Path(args.data).expanduser()
    build, cache = work / f"build-{seed}", work / f"cache-{seed}"
    test = work / "test.jsonl"
    test.write_text("".join((data / "test.jsonl").read_text().splitlines(keepends=True)[: args.test_rows]))
    compiled = promptc("compile", str(spec), "--train", str(data / "train.jsonl"), "--dev", str(data / "dev.jsonl"),
                       "--seed", str(seed), "--out", str(build), "--cache-dir", str(cache))
    if compiled.returncode != 0:
        raise SystemExit(compiled.stderr)
    report = work / f"report-{seed}.json"
    promptc("eval", "--program", str(build), "--data", str(test), "--report", str(report), "--cache-dir", str(cache))
    summary = json.loads(report.read_text())["summary"]
    artifact = json.loads((build / "program.json").read_text())
    trials = [json.loads(line) for line in (build / "trials.jsonl").read_text().splitlines() if line.strip()]
    embeds = sum(t["params"].get("embedding_requests", 0) for t in trials)
    return summary["mean"], artifact["provenance"]["usage"]["requests"], embeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", default="http://127.0.0.1:8765/v1")
    parser.add_argument("--model", default="sim-medium")
    parser.add_argument("--data", default="~/.cache/benchlm")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", default="", help="knn_few_shot settings, YAML flow: '{k: 8}'")
    parser.add_argument("--embedder", default=None, help="embedding model name (default: lexical)")
    parser.add_argument("--test-rows", type=int, default=300)
    args = parser.parse_args()
    scores = []
    with tempfile.TemporaryDirectory(prefix="bench-knn-") as tmp:
        for seed in args.seeds:
            score, requests, embeds = one(Path(tmp), args, seed)
            scores.append(score)
            print(f"seed {seed}: held-out {score:.3f}, compile requests {requests} LM + {embeds} embeddings",
                  flush=True)
    print(f"mean {statistics.mean(scores):.3f}, spread {max(scores) - min(scores):.3f} "
          f"({'lexical' if not args.embedder else 'embedding ' + args.embedder}, settings {args.settings or '{}'})")


if __name__ == "__main__":
    main()
