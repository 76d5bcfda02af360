"""Stress `promptc run` against rate-limited and faulty endpoints: does every row finish, once?

    python scripts/stress_ratelimit.py                  # every case, 500 rows (~4 minutes)
    python scripts/stress_ratelimit.py --rows 100 --rpm 300 --case rpm --case rpm+inflight

Each case starts promptc.testing's fake server in this process (so its request count
is at hand) with server-side limits, runs the real CLI (`python -m promptc run
--concurrency 64`) in a subprocess against it, and prints per case: rows out, missing,
duplicated and failed; the requests the run's usage counted beside those the server
received (and how many it answered 429); the wall time of the CLI and the ideal one
(rows at the server's limit) and the run's own time from its summary line, which leaves out
interpreter start-up; the ratio is run time over ideal.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.testing import FakeOpenAIServer  # noqa: E402

SPEC = """
version: 1
name: stress
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: STRESS_KEY
  timeout: 10
  max_retries: 6
  cache: false
program:
  - step: answer
    signature: "question -> answer: float"
"""


@dataclass
class Case:
    name: str
    server: dict[str, Any] = field(default_factory=dict)  # FakeOpenAIServer keyword arguments

    def ideal(self, rows: int) -> float:
        """Seconds the rows take at the server's limits, with nothing wasted."""
        rpm = self.server.get("rpm")
        by_rate = rows / (rpm / 60) if rpm else 0.0
        inflight, latency = self.server.get("max_inflight"), self.server.get("latency", 0.0)
        by_inflight = rows * latency / inflight if inflight else 0.0
        return max(by_rate, by_inflight)


def cases(rpm: int) -> list[Case]:
    faults = {"fault_rate": 0.2, "fault_kinds": ["rate_limit", "server_error", "reset", "truncated"], "seed": 3}
    return [
        Case("rpm", {"rpm": rpm}),
        Case("rpm+inflight", {"rpm": rpm, "max_inflight": 8, "latency": 0.1}),
        Case("inflight", {"max_inflight": 8, "latency": 0.1}),
        Case("rpm-no-headers", {"rpm": rpm, "rate_headers": False}),
        Case("faults", faults),
        Case("rpm+faults", {"rpm": rpm, **faults}),
    ]


def run_case(case: Case, rows: int, workdir: Path) -> dict[str, Any]:
    inp, out = workdir / "in.jsonl", workdir / f"out-{case.name}.jsonl"
    with open(inp, "w") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": i, "question": f"What is {i} plus zero?"}) + "\n")
    with FakeOpenAIServer(record=False, **case.server) as srv:
        spec = workdir / "spec.yaml"
        spec.write_text(SPEC.format(base_url=srv.base_url))
        env = {**os.environ, "STRESS_KEY": "sk-stress", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(inp), "-o", str(out),
                               "--concurrency", "64", "--overwrite"], capture_output=True, text=True, env=env,
                              timeout=900)
        wall = time.monotonic() - start
        received, outcomes = srv.request_count, srv.outcomes
    results = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    ids = collections.Counter(r["id"] for r in results)
    return {
        "exit": proc.returncode, "out": len(results), "missing": rows - len(set(ids) & set(range(rows))),
        "dup": sum(n - 1 for n in ids.values() if n > 1), "failed": sum(1 for r in results if r.get("_error")),
        "counted": sum(r.get("_usage", {}).get("requests", 0) for r in results), "received": received,
        "429": outcomes.get("rpm_limit", 0) + outcomes.get("inflight_limit", 0) + outcomes.get("rate_limit", 0),
        "wall": wall, "run": _run_seconds(proc.stdout), "ideal": case.ideal(rows), "stderr": proc.stderr.strip().splitlines()[-1:],
    }


def _run_seconds(stdout: str) -> float | None:
    """The run's own time from its summary line ("500 row(s) in 52.3s ..."): no interpreter start-up."""
    found = re.search(r"row\(s\) in ([0-9.]+)s", stdout)
    return float(found.group(1)) if found else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500)
    p.add_argument("--rpm", type=int, default=600, help="the server's requests per minute")
    p.add_argument("--case", action="append", help="run only these cases (repeatable)")
    args = p.parse_args()
    chosen = [c for c in cases(args.rpm) if not args.case or c.name in args.case]
    print(f"{args.rows} rows, `promptc run --concurrency 64`, server limit {args.rpm} RPM where set")
    print(f"{'case':<15} {'exit':>4} {'out':>5} {'miss':>5} {'dup':>4} {'fail':>5} {'counted':>8} "
          f"{'received':>8} {'429s':>5} {'wall s':>7} {'run s':>6} {'ideal s':>7} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in chosen:
            r = run_case(case, args.rows, Path(tmp))
            ratio = f"{r['run'] / r['ideal']:.2f}" if r["ideal"] and r["run"] else "-"
            run = f"{r['run']:.1f}" if r["run"] is not None else "-"
            print(f"{case.name:<15} {r['exit']:>4} {r['out']:>5} {r['missing']:>5} {r['dup']:>4} {r['failed']:>5} "
                  f"{r['counted']:>8} {r['received']:>8} {r['429']:>5} {r['wall']:>7.1f} {run:>6} {r['ideal']:>7.1f} {ratio:>6}", flush=True)
            if r["exit"] not in (0, 1):
                print(f"  {r['stderr']}")


if __name__ == "__main__":
    main()
