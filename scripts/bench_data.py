"""`promptc run` over the same rows as JSONL, CSV and Parquet: rows/s and peak memory.

    python scripts/bench_data.py --rows 1000000
    python scripts/bench_data.py --rows 100000 --formats jsonl,parquet --concurrency 256

Writes N rows (`question`, `id`) in each format into a temporary folder (streamed, so
making the data stays flat too), then times `promptc run` on each with the built-in
offline LM and no cache (nothing but promptc itself is measured), each in its own
process. Peak RSS is the child's own high-water mark (VmHWM of /proc/self/status, read
as it exits): `ru_maxrss` would also count the parent's pages at fork time.
Prints one row per format and the ratio of each to JSONL. Needs the `tables` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = """version: 1
name: bench_data
lm: {model: offline}
program:
  - step: answer
    signature: "question -> answer"
"""
CHUNK = 50_000


def rows(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": i, "question": f"What is {i % 97} plus {i % 89}? Row {i}."} for i in range(start, min(n, start + CHUNK))]


def write_data(folder: Path, n: int, formats: list[str]) -> dict[str, Path]:
    import csv

    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {f: folder / f"in.{f}" for f in formats}
    writer = pq.ParquetWriter(paths["parquet"], pa.schema([("id", pa.int64()), ("question", pa.string())])) \
        if "parquet" in paths else None
    jsonl = open(paths["jsonl"], "w", encoding="utf-8") if "jsonl" in paths else None
    table = open(paths["csv"], "w", encoding="utf-8", newline="") if "csv" in paths else None
    csv_writer = csv.DictWriter(table, fieldnames=["id", "question"]) if table else None
    if csv_writer:
        csv_writer.writeheader()
    for start in range(0, n, CHUNK):
        chunk = rows(n, start)
        if writer:
            writer.write_table(pa.Table.from_pylist(chunk))
        if jsonl:
            jsonl.writelines(json.dumps(r) + "\n" for r in chunk)
        if csv_writer:
            csv_writer.writerows(chunk)
    for fh in (writer, jsonl, table):
        if fh is not None:
            fh.close()
    return paths


# `promptc ARGS`, reporting the process's peak RSS on stderr as it exits.
CHILD = """
import atexit, re, sys
def peak():
    status = open("/proc/self/status").read()
    sys.stderr.write("VmHWM_KB " + re.search(r"VmHWM:\\s+(\\d+)", status).group(1) + "\\n")
atexit.register(peak)
sys.argv = ["promptc", *sys.argv[1:]]
from promptc.cli.app import main
main()
"""


def run_one(spec: Path, data: Path, out: Path, concurrency: int) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one `promptc run` in its own process."""
    args = [sys.executable, "-c", CHILD, "run", str(spec), "-i", str(data), "-o", str(out),
            "--no-cache", "--concurrency", str(concurrency)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    peak = re.search(r"VmHWM_KB (\d+)", done.stderr)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
    return wall, int(peak.group(1)) / 1024 if peak else float("nan"), done.returncode


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--formats", default="jsonl,parquet,csv")
    p.add_argument("--concurrency", type=int, default=128)
    args = p.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if "jsonl" not in formats:
        formats.insert(0, "jsonl")  # the reference every ratio is against
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        folder = Path(tmp)
        spec = folder / "spec.yaml"
        spec.write_text(SPEC, encoding="utf-8")
        made = time.perf_counter()
        paths = write_data(folder, args.rows, formats)
        print(f"{args.rows:,} rows written in {time.perf_counter() - made:.1f} s: "
              + ", ".join(f"{f} {paths[f].stat().st_size / 1e6:.0f} MB" for f in formats))
        print(f"{'format':<8} {'wall s':>8} {'rows/s':>9} {'vs jsonl':>8} {'peak RSS MB':>11} {'exit':>4}")
        base = None
        for fmt in formats:
            wall, rss, code = run_one(spec, paths[fmt], folder / f"out-{fmt}.jsonl", args.concurrency)
            rate = args.rows / wall
            base = base or rate
            print(f"{fmt:<8} {wall:8.1f} {rate:9.0f} {rate / base:8.2f} {rss:11.0f} {code:>4}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
