"""DSPy's side of scripts/bench_compile.py: the same Banking77 task, optimizers and endpoint.

Runs inside a separate virtualenv that has `dspy` installed (never promptc's dependency):

    python -m venv /tmp/dspy-venv && /tmp/dspy-venv/bin/pip install dspy
    python scripts/bench_compile.py --data ../shared/datasets/banking77 --dspy-python /tmp/dspy-venv/bin/python
"""


import argparse
import json
import time
from typing import Literal

import dspy


def load(path: str) -> list[dspy.Example]:
    with open(path, encoding="utf-8") as fh:
        return [dspy.Example(**json.loads(line)).with_inputs("text") for line in fh if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    labels = tuple(json.loads(args.labels))

    class Classify(dspy.Signature):
        """Classify the banking customer's query into one of 77 intents."""

        text: str = dspy.InputField()
        intent: Literal[labels] = dspy.OutputField()  # type: ignore[valid-type]

    lm = dspy.LM("openai/fake-model", api_base=args.base_url, api_key="sk-bench", cache=False,
                 temperature=0.0, num_retries=3)
    dspy.configure(lm=lm)
    train, dev, test = load(args.train), load(args.dev), load(args.test)

    def metric(example, prediction, trace=None):  # type: ignore[no-untyped-def]
        return example.intent == prediction.intent

    def score(program: dspy.Module, data: list[dspy.Example]) -> float:
        result = dspy.Evaluate(devset=data, metric=metric, num_threads=16, display_progress=False)(program)
        value = getattr(result, "score", result)
        return float(value) / 100.0 if float(value) > 1 else float(value)

    optimizers = {
        "labeled_few_shot": lambda: dspy.LabeledFewShot(k=160),
        "bootstrap_few_shot": lambda: dspy.BootstrapFewShot(metric=metric, max_bootstrapped_demos=40,
                                                            max_labeled_demos=160),
        "random_search": lambda: dspy.BootstrapFewShotWithRandomSearch(
            metric=metric, max_bootstrapped_demos=40, max_labeled_demos=160, num_candidate_programs=6,
            num_threads=16),
    }
    print(f"TABLE {'optimizer':>19} {'test before':>11} {'test after':>10} {'LM calls':>8} {'wall s':>7}")
    before = score(dspy.Predict(Classify), test)
    for name, make in optimizers.items():
        calls_before = len(lm.history)
        start = time.perf_counter()
        kwargs = {"valset": dev} if name == "random_search" else {}
        compiled = make().compile(dspy.Predict(Classify), trainset=train, **kwargs)
        wall = time.perf_counter() - start
        calls = len(lm.history) - calls_before
        after = score(compiled, test)
        print(f"TABLE {name:>19} {before:>11.3f} {after:>10.3f} {calls:>8} {wall:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
