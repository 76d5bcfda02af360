"""Benchmark `promptc run`: throughput beside a bare AsyncOpenAI loop, memory, start-up time.

    python scripts/bench_run.py                 # everything (~4 minutes on 2 cores)
    python scripts/bench_run.py --quick         # fewer rows, skips the 100k-row memory run

The fake server (promptc.testing) runs in its own process so that client and server do
not share a GIL. Figures are medians of --repeat runs; machines here are noisy, so read
the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from promptc.testing import spawn_server_process  # noqa: E402

SPEC = """
version: 1
name: bench
lm:
  model: fake-model
  base_url: {base_url}
  api_key_env: BENCH_KEY
  max_retries: 2
  concurrency: {concurrency}
program:
  - step: answer
    signature: "question -> answer: float"
"""


def write_rows(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": i, "question": f"What is {i} plus zero?"}) + "\n")


async def bare_loop(base_url: str, rows: int, concurrency: int) -> float:
    """The floor to compare with: AsyncOpenAI on aiohttp, one request per row, nothing else."""
    import openai

    from promptc.core.adapter import ChatAdapter
    from promptc.core.signature import Signature

    sig = Signature.parse("question -> answer: float")
    adapter = ChatAdapter()
    sem = asyncio.Semaphore(concurrency)
    async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0,
                                  http_client=openai.DefaultAioHttpClient()) as client:
        async def one(i: int) -> None:
            messages = [m.model_dump() for m in adapter.format(sig, inputs={"question": f"What is {i} plus zero?"})]
            async with sem:
                await client.chat.completions.create(model="fake-model", messages=messages, temperature=0)

        await asyncio.gather(*(one(-1 - k) for k in range(concurrency)))  # open the connection pool
        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(rows)))
        return rows / (time.perf_counter() - start)


def promptc_run(base_url: str, rows: int, concurrency: int, workdir: Path) -> float:
    """`promptc run`'s own job (cache on, output appended and flushed per row), in process."""
    from promptc.runner.job import RunJob
    from promptc.spec.lms import LMOptions
    from promptc.spec.loader import load_text

    spec = SPEC.format(base_url=base_url, concurrency=concurrency)
    cache = Path(tempfile.mkdtemp(dir=workdir)) / "cache.sqlite"
    program = load_text(spec, options=LMOptions(cache_path=cache)).program
    inp, out = workdir / f"in-{rows}.jsonl", workdir / f"out-{rows}-{concurrency}.jsonl"
    if not inp.exists():
        write_rows(inp, rows)
    job = RunJob(program=program, input=inp, output=out, overwrite=True, concurrency=concurrency)

    async def go() -> float:
        # Open the connection pool, as bare_loop does.
        await asyncio.gather(*(program.acall({"question": f"warm up {k}"}) for k in range(concurrency)))
        _, done = job.prepare()
        start = time.perf_counter()
        stats = await job.run(done)
        assert stats.failed == 0, f"{stats.failed} rows failed"
        return stats.done / (time.perf_counter() - start)

    return asyncio.run(go())


def throughput(args: argparse.Namespace, workdir: Path) -> None:
    os.environ["BENCH_KEY"] = "sk-bench"
    print("## run throughput against the fake server (rows/s, median of", args.repeat, "runs)")
    print(f"{'latency':>8} {'conc':>5} {'rows':>6} {'bare loop':>10} {'promptc':>9} {'ratio':>6}")
    configs = [(0.0, 1, args.rows // 4), (0.0, 16, args.rows), (0.0, 64, args.rows),
               (0.2, 64, args.slow_rows)]
    for latency, conc, rows in configs:
        with spawn_server_process(latency=latency) as base_url:
            bare = statistics.median(asyncio.run(bare_loop(base_url, rows, conc)) for _ in range(args.repeat))
            ours = statistics.median(promptc_run(base_url, rows, conc, workdir) for _ in range(args.repeat))
        note = f"  (limit {conc / latency:.0f}: {ours / (conc / latency):.0%} of it)" if latency else ""
        print(f"{latency * 1000:>6.0f}ms {conc:>5} {rows:>6} {bare:>10.0f} {ours:>9.0f} {ours / bare:>6.2f}{note}")


def memory(args: argparse.Namespace, workdir: Path) -> None:
    print("\n## peak RSS of `promptc run` (CLI subprocess, fake server, concurrency 64)")
    with spawn_server_process(latency=0.0) as base_url:
        spec = workdir / "mem.yaml"
        spec.write_text(SPEC.format(base_url=base_url, concurrency=64))
        for rows in args.rss_rows:
            inp, out = workdir / f"mem-{rows}.jsonl", workdir / f"mem-out-{rows}.jsonl"
            write_rows(inp, rows)
            env = {**os.environ, "BENCH_KEY": "sk-bench", "PROMPTC_CACHE_DIR": str(workdir / f"c{rows}")}
            code = ("import resource, subprocess, sys; "
                    "r = subprocess.run(sys.argv[1:]); "
                    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "promptc", "run",
                                   str(spec), "-i", str(inp), "-o", str(out), "--overwrite"],
                                  capture_output=True, text=True, env=env, cwd=ROOT)
            seconds = time.perf_counter() - start
            if proc.returncode != 0:
                print(proc.stderr[-2000:])
                raise SystemExit(f"run of {rows} rows failed")
            rss_mb = int(proc.stdout.strip().splitlines()[-1]) / 1024
            print(f"{rows:>8} rows: peak RSS {rss_mb:6.1f} MB, {seconds:6.1f} s ({rows / seconds:.0f} rows/s incl. start-up)")


def startup(args: argparse.Namespace) -> None:
    print("\n## `promptc --help` start-up (median of 7)")
    times = []
    for _ in range(7):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "promptc", "--help"], capture_output=True, cwd=ROOT, check=True)
        times.append(time.perf_counter() - start)
    print(f"median {statistics.median(times):.3f} s (target < 0.3 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3000, help="rows per zero-latency run")
    parser.add_argument("--slow-rows", type=int, default=3200, help="rows for the 200 ms latency run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rss-rows", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--quick", action="store_true", help="small runs; no 100k memory run")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.slow_rows, args.repeat, args.rss_rows = 800, 640, 1, [5_000]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        startup(args)
        throughput(args, workdir)
        memory(args, workdir)
    print(f"\n(bench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
