"""DSPy's BootstrapFewShot over several orders of the training rows, on the benchmark LM.

BootstrapFewShot takes no seed: it walks the training set in order, so dspy_reference.py's
single figure is one draw. This runs the reference's own compile (its splits, metric and
program: ChainOfThought, 4 bootstrapped + 4 labelled demos) on the training rows as given
(order 0, the reference's figure) and shuffled with Random(k) (order k), and scores each on
the held-out rows: the distribution promptc's bootstrap_few_shot over seeds compares with.
Run it with the Python of a virtualenv that has DSPy (never promptc's dependency):

    /tmp/dspy-venv/bin/python scripts/dspy_bootstrap_orders.py --url http://127.0.0.1:8765/v1 \\
        --data ~/.cache/benchlm --orders 0,1,2,3,4,5,6,7,8,9

Requests are counted at the server (GET /stats), as in bench_quality.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def reference(path: Path) -> ModuleType:
    """dspy_reference.py, imported from its path: its splits, metric and request counter."""
    if not path.is_file():
        sys.exit(f"--dspy-script {path}: not found")
    spec = importlib.util.spec_from_file_location("dspy_reference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the benchmark LM's base URL, e.g. http://127.0.0.1:8765/v1")
    p.add_argument("--data", type=Path, required=True, help="the benchmark LM's folder (world.jsonl)")
    p.add_argument("--model", default="sim-medium")
    p.add_argument("--orders", default="0,1,2", help="comma list; 0 is the file's order, k shuffles with Random(k)")
    p.add_argument("--test-n", type=int, default=300)
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--dspy-script", type=Path, default=ROOT.parent / "shared" / "benchlm" / "dspy_reference.py")
    args = p.parse_args()
    ref = reference(args.dspy_script)
    dspy = ref.dspy
    dspy.configure(lm=dspy.LM(f"openai/{args.model}", api_base=args.url, api_key="x", temperature=0, cache=False))
    splits = ref.load_splits(args.data / "world.jsonl", args.test_n)
    scores = []
    for order in (int(x) for x in args.orders.split(",")):
        train = list(splits["train"])
        if order:
            random.Random(order).shuffle(train)
        before = ref.server_stats(args.url)["requests"]
        program = dspy.BootstrapFewShot(metric=ref.metric, max_bootstrapped_demos=4, max_labeled_demos=4).compile(
            dspy.ChainOfThought("question -> answer"), trainset=train)
        spent = ref.server_stats(args.url)["requests"] - before
        result = dspy.Evaluate(devset=splits["test"], metric=ref.metric, num_threads=args.threads,
                               display_progress=False)(program)
        score = float(getattr(result, "score", result)) / 100
        scores.append(score)
        print(f"order {order}: held-out {score:.3f}, compile requests {spent}", flush=True)
    if len(scores) > 1:
        print(f"BootstrapFewShot over {len(scores)} orders: mean {statistics.mean(scores):.3f}, "
              f"min {min(scores):.3f}, max {max(scores):.3f}")


if __name__ == "__main__":
    main()
