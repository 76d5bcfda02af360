"""Stress `promptc run` against endpoints that cannot be reached: wall time and exit code.

    python scripts/stress_dead.py               # 1,000 rows per case
    python scripts/stress_dead.py --rows 200

Cases: a closed port on 127.0.0.1, and an unresolvable host (the reserved `.invalid`
domain). Each runs `python -m promptc run` with the spec's production defaults
(timeout 60 s, 6 retries, concurrency 16) and prints the wall time, the exit code and
the error line. The goal is exit 3 within 15 s naming the cause and the URL; before
the circuit breaker, 1,000 rows against a closed port took 35 minutes and exited 1.
Then the closed port gets a server (promptc.testing) and `--resume` finishes the job.
Last, a server that dies mid-run: the time from its death to the exit (the breaker
waits WINDOW seconds of nothing but connection failures once the endpoint has answered).
Timings include interpreter start-up and the resolver's own delays, and are noisy on
a shared machine: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.testing import FakeOpenAIServer  # noqa: E402

KEY = "sk-stress-dead-0123456789"
SPEC = """
version: 1
name: dead
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: STRESS_KEY
program:
  - step: answer
    signature: "question -> answer: float"
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def promptc_run(spec: Path, rows: Path, out: Path, *extra: str) -> tuple[float, int, str]:
    """(seconds, exit code, stderr) of one `promptc run` subprocess."""
    env = {**os.environ, "STRESS_KEY": KEY, "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(rows),
                           "-o", str(out), *extra], capture_output=True, text=True, env=env, cwd=ROOT)
    return time.monotonic() - start, proc.returncode, proc.stderr


def case(name: str, base_url: str, rows: Path, work: Path) -> Path:
    spec, out = work / f"{name}.yaml", work / f"{name}.out.jsonl"
    spec.write_text(SPEC.format(base_url=base_url))
    seconds, code, stderr = promptc_run(spec, rows, out)
    error = next((line for line in stderr.splitlines() if line.startswith("error:")), stderr.strip())
    print(f"{name:<18} {seconds:6.1f} s  exit {code}  {error}")
    return spec


def dies_mid_run(rows: Path, work: Path) -> None:
    spec, out = work / "dies.yaml", work / "dies.out.jsonl"
    env = {**os.environ, "STRESS_KEY": KEY, "PYTHONPATH": str(ROOT)}
    with FakeOpenAIServer(latency=0.02) as srv:
        spec.write_text(SPEC.format(base_url=srv.base_url))
        proc = subprocess.Popen([sys.executable, "-m", "promptc", "run", str(spec), "-i", str(rows),
                                 "-o", str(out)], stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        while not out.exists() or out.read_bytes().count(b"\n") < 100:
            time.sleep(0.01)
    died = time.monotonic()
    _, stderr = proc.communicate()
    seconds = time.monotonic() - died
    kept = out.read_bytes().count(b"\n")
    error = next((line for line in stderr.splitlines() if line.startswith("error:")), "")
    print(f"{'dies mid-run':<18} {seconds:6.1f} s  exit {proc.returncode}  {kept} row(s) kept  {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = work / "rows.jsonl"
        rows.write_text("".join(json.dumps({"question": f"What is {i} plus zero?"}) + "\n"
                                for i in range(args.rows)))
        print(f"{args.rows} rows per case")
        port = closed_port()
        spec = case("closed port", f"http://127.0.0.1:{port}/v1", rows, work)
        case("unresolvable host", "http://nonexistent.invalid/v1", rows, work)
        with FakeOpenAIServer(port=port):
            seconds, code, _ = promptc_run(spec, rows, work / "closed port.out.jsonl", "--resume")
        done = sum(1 for _ in open(work / "closed port.out.jsonl"))
        print(f"{'resume, server up':<18} {seconds:6.1f} s  exit {code}  {done} row(s) in the output")
        dies_mid_run(rows, work)


if __name__ == "__main__":
    main()
