"""Benchmark `promptc run --engine ray` beside the single-process `promptc run`.

    pip install -e '.[ray]'
    python scripts/bench_ray.py                       # 1000 rows, 2 Ray workers
    python scripts/bench_ray.py --rows 200 --latency 0.2

Both runs are the real CLI in a subprocess, on the same input, against the fake server
(promptc.testing) in its own process, with --no-cache so every row is a request. Printed:
the rows/s promptc reports (for Ray: from the first row sent to the cluster, so without
Ray's start-up) and the wall time of the whole command (with it). Each output is checked
to hold every input row exactly once. On a small machine the client, the server and the
Ray workers share the cores: read the figures as what they are, not as a speed-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from bench_run import SPEC  # noqa: E402  (the same one-step spec as the single-process benchmark)

from promptc.testing import spawn_server_process  # noqa: E402


def run_cli(args: list[str]) -> tuple[float, float]:
    """(rows/s as promptc reports it, wall seconds of the command)."""
    env = {**os.environ, "BENCH_KEY": "bench", "RAY_DISABLE_USAGE_STATS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "promptc", "run", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"promptc run {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    match = re.search(r"\(([\d.]+) rows/s\)", done.stdout)
    if match is None:
        sys.exit(f"no rows/s in the output:\n{done.stdout}")
    return float(match.group(1)), wall


def check_exactly_once(path: Path, rows: int) -> None:
    ids = sorted(json.loads(line)["_row"] for line in path.read_text().splitlines() if line.strip())
    if ids != list(range(1, rows + 1)):
        sys.exit(f"{path}: {len(ids)} rows, not every input row exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32, help="rows in flight per process / worker")
    parser.add_argument("--latency", type=float, default=0.05, help="the fake server's seconds per reply")
    args = parser.parse_args()
    if importlib.util.find_spec("ray") is None:
        sys.exit("ray is not installed: pip install 'promptc[ray]'")
    with tempfile.TemporaryDirectory() as tmp, spawn_server_process(latency=args.latency) as base_url:
        work = Path(tmp)
        spec = work / "spec.yaml"
        spec.write_text(SPEC.format(base_url=base_url, concurrency=args.concurrency))
        inp = work / "in.jsonl"
        inp.write_text("".join(json.dumps({"id": i, "question": f"What is {i} plus zero?"}) + "\n"
                               for i in range(args.rows)))
        common = [str(spec), "-i", str(inp), "--no-cache"]
        print(f"{args.rows} rows, fake server latency {args.latency}s, concurrency {args.concurrency}, "
              f"{os.cpu_count()} CPU(s)")
        local_rate, local_wall = run_cli([*common, "-o", str(work / "local.jsonl")])
        check_exactly_once(work / "local.jsonl", args.rows)
        print(f"  promptc run (one process)      {local_rate:8.1f} rows/s   wall {local_wall:6.1f}s")
        ray_rate, ray_wall = run_cli([*common, "-o", str(work / "ray.jsonl"), "--engine", "ray",
                                      "--workers", str(args.workers)])
        check_exactly_once(work / "ray.jsonl", args.rows)
        print(f"  --engine ray --workers {args.workers:<2}       {ray_rate:8.1f} rows/s   wall {ray_wall:6.1f}s"
              "  (rows/s without Ray start-up; wall with it)")
        print("  both outputs: every input row exactly once")


if __name__ == "__main__":
    main()
