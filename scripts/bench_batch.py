"""Measure `run --batch` against the fake server: the same rows as a live run, and its cost in time.

    python scripts/bench_batch.py              # 2,000 rows, a 1-step and a 2-step spec
    python scripts/bench_batch.py --rows 20000

Prints, per spec: live and batched wall time, batches created, rounds, request lines sent,
and whether the two output files hold the same rows (fields, order, `_usage`). The fake
server (promptc.testing) runs in this process; its batches finish after three polls.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.jobs.run import run  # noqa: E402
from promptc.lm.batch_round import BatchOptions  # noqa: E402
from promptc.testing import FakeOpenAIServer  # noqa: E402

HEAD = """
version: 1
name: bench
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: BENCH_KEY
  concurrency: 64
"""
ONE_STEP = """program:
  - step: answer
    signature: "question -> answer: float"
"""
TWO_STEPS = """program:
  - step: answer
    signature: "question -> answer: float"
  - step: check
    signature: "question, answer: float -> verdict: bool"
"""


def rows_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def measure(name: str, program: str, rows: int, folder: Path, srv: FakeOpenAIServer) -> None:
    spec = folder / f"{name}.yaml"
    spec.write_text(HEAD.format(base_url=srv.base_url) + program)
    inp = folder / f"{name}.in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "question": f"What is {i} plus zero?"}) + "\n" for i in range(rows)))
    os.environ["PROMPTC_CACHE_DIR"] = str(folder / f"{name}-live-cache")
    start = time.monotonic()
    live = run(str(spec), inp, folder / f"{name}.live.jsonl")
    live_s = time.monotonic() - start
    os.environ["PROMPTC_CACHE_DIR"] = str(folder / f"{name}-batch-cache")  # nothing cached
    created = srv.batch_api.created
    start = time.monotonic()
    batched = run(str(spec), inp, folder / f"{name}.batch.jsonl", batch=BatchOptions(poll=0.05))
    batch_s = time.monotonic() - start
    same = rows_of(folder / f"{name}.live.jsonl") == rows_of(folder / f"{name}.batch.jsonl")
    assert batched.batch is not None
    print(f"{name}: {rows} rows; live {live_s:.1f}s ({live.ok} ok); batch {batch_s:.1f}s ({batched.ok} ok), "
          f"{srv.batch_api.created - created} batch(es), {batched.batch.waves} round(s), "
          f"{batched.batch.requests} request line(s); identical output: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()
    os.environ["BENCH_KEY"] = "sk-bench"
    with FakeOpenAIServer() as srv, tempfile.TemporaryDirectory() as tmp:
        measure("one-step", ONE_STEP, args.rows, Path(tmp), srv)
        measure("two-steps", TWO_STEPS, args.rows, Path(tmp), srv)


if __name__ == "__main__":
    main()
