"""Benchmark `promptc eval`: throughput against the fake server, and the cost of scoring.

    python scripts/bench_eval.py            # ~1 minute
    python scripts/bench_eval.py --rows 1000

Prints eval rows/s beside `run` rows/s on the same data and endpoint (the difference is
the scoring, records and statistics), and microseconds per example for each built-in metric.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
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
lm: {{model: fake-model, base_url: "{base_url}", api_key_env: BENCH_KEY, concurrency: {concurrency}}}
program:
  - step: answer
    signature: "question -> answer: float"
metric:
  - {{type: numeric_match, field: answer}}
  - {{type: exact_match, field: answer, weight: 0.5}}
"""


def write_rows(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"question": f"What is {i} plus zero?", "answer": i}) + "\n")


def timed_eval(base_url: str, data: Path, concurrency: int, workdir: Path) -> tuple[float, float]:
    """(eval rows/s, run rows/s) in process, cache on, on the same data."""
    from promptc.evaluation.evaluator import EvalJob, Gate, summarize
    from promptc.jobs.metrics import resolve_metrics
    from promptc.jobs.program import LoadedProgram
    from promptc.runner.job import RunJob
    from promptc.spec.lms import LMOptions
    from promptc.spec.loader import load_text

    def fresh():
        cache = Path(tempfile.mkdtemp(dir=workdir)) / "c.sqlite"
        return load_text(SPEC.format(base_url=base_url, concurrency=concurrency),
                         options=LMOptions(cache_path=cache))

    loaded = fresh()
    metrics = resolve_metrics(LoadedProgram(loaded.program, spec=loaded), None)
    job = EvalJob(program=loaded.program, metrics=metrics, data=data, concurrency=concurrency)

    async def go_eval() -> float:
        await asyncio.gather(*(loaded.program.acall({"question": f"warm {k}"}) for k in range(concurrency)))
        job.prepare()
        start = time.perf_counter()
        records = await job.run()
        summarize(records, metrics, spec="bench", program=None, data=str(data), gate=Gate(),
                  wall_seconds=0.0)
        return len(records) / (time.perf_counter() - start)

    eval_rate = asyncio.run(go_eval())
    loaded = fresh()
    run_job = RunJob(program=loaded.program, input=data, output=workdir / "run-out.jsonl", overwrite=True,
                     concurrency=concurrency)

    async def go_run() -> float:
        await asyncio.gather(*(loaded.program.acall({"question": f"warm {k}"}) for k in range(concurrency)))
        _, done = run_job.prepare()
        start = time.perf_counter()
        stats = await run_job.run(done)
        return stats.done / (time.perf_counter() - start)

    return eval_rate, asyncio.run(go_run())


def metric_costs(n: int = 20000) -> None:
    from promptc.metrics.config import build_metrics, parse_metric

    configs = {
        "exact_match": parse_metric(type="exact_match"),
        "f1": parse_metric(type="f1"),
        "contains": parse_metric(type="contains"),
        "regex": parse_metric(type="regex", pattern=r"\bParis\b"),
        "numeric_match": parse_metric(type="numeric_match", field="n"),
        "label_accuracy": parse_metric(type="label_accuracy"),
        "json_valid": parse_metric(type="json_valid", field="j"),
        "max_words": parse_metric(type="max_words", limit=50),
    }
    example = {"answer": "The capital of France is Paris.", "n": "$1,234.50", "j": "{}"}
    prediction = {"answer": "Paris is the capital of France", "n": "1234.5", "j": '{"a": [1, 2]}'}
    print(f"\n## scoring cost per example (µs, median of 5 × {n:,} calls)")
    for name, cfg in configs.items():
        metric = build_metrics([cfg], default_field="answer")[0]
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(n):
                metric(example, prediction)
            samples.append((time.perf_counter() - start) / n * 1e6)
        print(f"{name:>15}: {statistics.median(samples):6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ["BENCH_KEY"] = "sk-bench"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        data = workdir / "dev.jsonl"
        write_rows(data, args.rows)
        print(f"## eval vs run throughput, fake server, {args.rows} rows (median of {args.repeat})")
        print(f"{'conc':>5} {'run rows/s':>11} {'eval rows/s':>12} {'ratio':>6}")
        with spawn_server_process(latency=0.0) as base_url:
            for conc in (16, 64):
                pairs = [timed_eval(base_url, data, conc, workdir) for _ in range(args.repeat)]
                ev = statistics.median(p[0] for p in pairs)
                rn = statistics.median(p[1] for p in pairs)
                print(f"{conc:>5} {rn:>11.0f} {ev:>12.0f} {ev / rn:>6.2f}")
    metric_costs()


if __name__ == "__main__":
    main()
