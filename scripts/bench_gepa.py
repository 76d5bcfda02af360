"""Measure an optimizer on the benchmark LM (`../shared/benchlm`): held-out accuracy per seed
and the requests each compile sent, counted at the server's /stats.

    python ../shared/benchlm/serve.py --port 8779 &        # a server of your own: exact counts
    python scripts/bench_gepa.py --url http://127.0.0.1:8779 --data ~/.cache/benchlm \\
        --optimizer "{name: gepa, auto: light}" --seeds 0 1 2

Train = train.jsonl (200), dev = dev.jsonl (300), held out = the first 300 rows of
test.jsonl, scored with `promptc eval --program BUILD`. Every compile gets a fresh cache, so
the requests counted are the compile's own. benchlm is a development instrument: promptc
never imports it and no test needs it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SPEC = """version: 1
name: gsm
lm: {{model: {model}, base_url: "{url}/v1", api_key_env: BENCH_KEY, temperature: 0}}
signatures:
  solve:
    inputs:
      question: str
    outputs:
      answer: float
program:
  - step: solve
    module: chain_of_thought
    signature: solve
metric:
  type: numeric_match
  field: answer
optimizer: {optimizer}
"""


def requests(url: str) -> int:
    with urllib.request.urlopen(f"{url}/stats") as response:
        return int(json.load(response)["requests"])


def promptc(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BENCH_KEY": "x", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "promptc", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"promptc {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8779")
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache/benchlm")
    ap.add_argument("--model", default="sim-medium")
    ap.add_argument("--optimizer", default="{name: gepa, auto: light}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_gepa_"))
    work.mkdir(parents=True, exist_ok=True)
    spec = work / "gsm.yaml"
    spec.write_text(SPEC.format(model=args.model, url=args.url, optimizer=args.optimizer))
    test = work / "test300.jsonl"
    test.write_text("".join((args.data / "test.jsonl").read_text().splitlines(keepends=True)[:300]))
    rows = []
    for seed in args.seeds:
        build, cache = work / f"build{seed}", work / f"cache{seed}"
        before = requests(args.url)
        promptc("compile", str(spec), "--train", str(args.data / "train.jsonl"), "--dev",
                str(args.data / "dev.jsonl"), "--seed", str(seed), "--out", str(build), "--cache-dir", str(cache))
        sent = requests(args.url) - before
        report = work / f"report{seed}.json"
        promptc("eval", str(spec), "--program", str(build), "--data", str(test), "--report", str(report),
                "--cache-dir", str(work / "eval-cache"))
        held_out = json.loads(report.read_text())["summary"]["mean"]
        dev = json.loads((build / "program.json").read_text())["provenance"]["dev_score_after"]
        rows.append((seed, held_out, sent))
        print(f"seed {seed}: held-out {held_out:.3f}  validation {dev:.3f}  compile requests {sent}", flush=True)
    scores = [r[1] for r in rows]
    print(f"mean {statistics.mean(scores):.3f}  spread {max(scores) - min(scores):.3f}  "
          f"requests {[r[2] for r in rows]}  ({args.optimizer}; work {work})")


if __name__ == "__main__":
    main()
