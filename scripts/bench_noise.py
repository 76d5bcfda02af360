"""How far apart the benchmark LM scores programs that say the same thing: the noise floor
under a seed-spread figure.

Compiles once (one optimizer, one seed), then scores the compiled program on the held-out
rows again with its demos in other orders (each predictor's demos shuffled with Random(k)):
the same instructions and the same demos, so whatever spread this shows is what any two
compiles would show even if they found programs of equal worth. Prints each order's
held-out accuracy, the range and standard deviation, and the range three seeds would show
on average if that were all the variation there is (1.69 standard deviations: the expected
range of three normal draws).

    python scripts/bench_noise.py --url http://127.0.0.1:8765/v1 --data ~/.cache/benchlm
    python scripts/bench_noise.py --url ... --data ... --optimizer bootstrap_few_shot --orders 12

The benchmark LM is a development instrument (../shared/benchlm), never a test dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "scripts"):  # promptc, and bench_quality beside this file
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_quality import KEY_ENV, BenchError, read_rows, spec_text  # noqa: E402

EXPECTED_RANGE_OF_THREE = 1.6926  # E[max - min] of three standard normal draws


def shuffled_state(state: dict[str, Any], order: int) -> dict[str, Any]:
    """Every predictor's demos in the order Random(order) gives (order 0: as compiled)."""
    out = {}
    for name, predictor in state.items():
        demos = list(predictor.demos)
        if order:
            random.Random(f"{order}-{name}").shuffle(demos)
        out[name] = predictor.model_copy(update={"demos": demos})
    return out


def order_scores(args: argparse.Namespace, train: list[dict[str, Any]], dev: list[dict[str, Any]],
                 test: list[dict[str, Any]]) -> list[float]:
    """Compile once, then the held-out accuracy of the compiled program in `args.orders` demo orders."""
    import promptc

    scores = []
    with tempfile.TemporaryDirectory(prefix="bench-noise-") as tmp:
        spec = Path(tmp) / "gsm.yaml"
        spec.write_text(spec_text(args.url, args.model), encoding="utf-8")
        with promptc.load_program(spec, cache_dir=Path(tmp) / "cache", concurrency=args.concurrency) as loaded:
            compiled = promptc.compile(loaded, train, dev, optimizer=args.optimizer, seed=args.seed,
                                       concurrency=args.concurrency).program
            base = compiled.program
            for order in range(args.orders):
                compiled.program = base.with_state(shuffled_state(base.state(), order))
                records = promptc.evaluate(compiled, test, concurrency=args.concurrency).records
                scores.append(sum(r.score or 0.0 for r in records) / len(records))
                print(f"order {order}: held-out {scores[-1]:.3f}", flush=True)
            compiled.program = base
    return scores


def main(argv: list[str] | None = None) -> int:
    import promptc

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the benchmark LM's base URL, e.g. http://127.0.0.1:8765/v1")
    p.add_argument("--data", type=Path, required=True, help="folder with train.jsonl, dev.jsonl, test.jsonl")
    p.add_argument("--model", default="sim-medium")
    p.add_argument("--optimizer", default="reflective_bootstrap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--orders", type=int, default=8, help="demo orders to score, the compiled one included")
    p.add_argument("--train-n", type=int, default=200)
    p.add_argument("--dev-n", type=int, default=300)
    p.add_argument("--test-n", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=16)
    args = p.parse_args(argv)
    if args.orders < 1:
        p.error("--orders must be at least 1")
    try:
        train, dev = read_rows(args.data, "train", args.train_n), read_rows(args.data, "dev", args.dev_n)
        test = read_rows(args.data, "test", args.test_n)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    os.environ.setdefault(KEY_ENV, "bench")
    try:
        scores = order_scores(args, train, dev, test)
    except promptc.PromptcError as exc:  # a dead URL, a bad setting: one line and promptc's exit code
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    print(json.dumps({"optimizer": args.optimizer, "seed": args.seed, "orders": len(scores),
                      "mean": round(statistics.mean(scores), 4), "min": round(min(scores), 4),
                      "max": round(max(scores), 4), "sd_points": round(100 * sd, 2),
                      "expected_range_of_three_points": round(100 * sd * EXPECTED_RANGE_OF_THREE, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
