"""What `promptc run` / `eval` / `compile` do when writing fails: exit code, wall time, and
how many complete (valid JSONL) rows the output keeps.

    python scripts/bench_write_failures.py            # every case this machine allows
    python scripts/bench_write_failures.py --rows 2000

Cases: the output, an eval --report and a compile --out in a read-only folder (a read-only
tmpfs as root, else a chmod 0555 folder), an output under a file (/proc/version/x), /dev/full
(ENOSPC on every write), --overwrite onto /dev/full, and a real disk filling mid-run (a
64 KiB tmpfs; root only). The fake server runs in its own process. A case the machine does
not allow is printed as skipped, with the reason. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.testing import spawn_server_process  # noqa: E402

SPEC = """version: 1
name: qa
lm: {{model: fake-model, base_url: "{base_url}", api_key_env: BENCH_KEY, concurrency: 32}}
program:
  - step: answer
    signature: "question -> answer: float"
"""


def valid_rows(path: Path) -> str:
    """Complete rows in `path` ('-' for a device or a missing file); 'BROKEN' if a line is not JSON."""
    if not path.exists() or not stat.S_ISREG(path.stat().st_mode):
        return "-"
    data = path.read_bytes()
    try:
        rows = [json.loads(line) for line in data.decode().splitlines()]
    except ValueError:
        return "BROKEN"
    return str(len(rows)) + ("" if not data or data.endswith(b"\n") else " + half a line")


@contextlib.contextmanager
def tmpfs(path: Path, options: str) -> Iterator[str | None]:
    """Mount a tmpfs; yields None when mounted, else why not."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    try:
        yield None if done.returncode == 0 else (done.stderr.strip() or "mount failed")
    finally:
        if done.returncode == 0:
            subprocess.run(["umount", str(path)], check=False)


@contextlib.contextmanager
def readonly(path: Path) -> Iterator[str | None]:
    if os.geteuid() == 0:
        with tmpfs(path, "ro,size=64k") as why:
            yield None if why is None else f"root, and cannot mount a read-only tmpfs: {why}"
        return
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    try:
        yield None
    finally:
        path.chmod(0o755)


def promptc(*args: str, env: dict[str, str]) -> tuple[int, float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "promptc", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    seconds = time.perf_counter() - start
    error = next((line for line in done.stderr.splitlines() if line.startswith("error:")), "")
    if "Traceback" in done.stderr or "never retrieved" in done.stderr:
        error = "TRACEBACK " + error
    return done.returncode, seconds, error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000)
    args = parser.parse_args()
    env = {**os.environ, "BENCH_KEY": "k", "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}
    with spawn_server_process(api_key="k") as base_url, tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env["PROMPTC_CACHE_DIR"] = str(tmp / "cache")
        spec = tmp / "spec.yaml"
        spec.write_text(SPEC.format(base_url=base_url))
        rows = tmp / "in.jsonl"
        with open(rows, "w") as fh:
            for i in range(args.rows):
                fh.write(json.dumps({"question": f"What is {i} plus zero?", "answer": float(i)}) + "\n")
        run = ["run", str(spec), "-i", str(rows), "--no-cache"]
        print(f"{'case':<34} {'exit':>4} {'wall s':>7} {'valid rows':>12}  message")

        def report(case: str, out: Path | None, cmd: list[str], why: str | None = None) -> None:
            if why is not None:
                print(f"{case:<34} skipped: {why}")
                return
            code, seconds, error = promptc(*cmd, env=env)
            print(f"{case:<34} {code:>4} {seconds:>7.1f} {valid_rows(out) if out else '-':>12}  {error[:110]}")

        with readonly(tmp / "ro") as why:
            ro = tmp / "ro"
            report("run -o READONLY/out.jsonl", ro / "out.jsonl", [*run, "-o", str(ro / "out.jsonl")], why)
            report("eval --report READONLY/r.html", None,
                   ["eval", str(spec), "--data", str(rows), "--metric", "numeric_match", "--no-cache",
                    "--report", str(ro / "r.html")], why)
            report("compile --out READONLY/build", None,
                   ["compile", str(spec), "--train", str(rows), "--optimizer", "labeled_few_shot",
                    "--out", str(ro / "build")], why)
        report("run -o /proc/version/x", None, [*run, "-o", "/proc/version/x"])
        report("run -o /dev/full", None, [*run, "-o", "/dev/full"])
        report("run -o /dev/full --overwrite", None, [*run, "-o", "/dev/full", "--overwrite"])
        print(f"{'':<34} /dev/full still a character device: {stat.S_ISCHR(os.stat('/dev/full').st_mode)}")
        with tmpfs(tmp / "disk", "size=64k") as why:
            out = tmp / "disk" / "out.jsonl"
            report(f"run -o 64KiB-tmpfs ({args.rows} rows)", out, [*run, "-o", str(out)], why)
            if why is None:
                moved = tmp / "resumed.jsonl"
                moved.write_bytes(out.read_bytes())
                report("  then --resume on a roomy disk", moved, [*run, "-o", str(moved), "--resume"])


if __name__ == "__main__":
    main()
