"""llm_judge: a rubric graded by an LM, run as a one-step promptc program.

The judge is an ordinary signature (`inputs, gold, prediction, rubric -> score,
feedback`) run through the core, so it gets the same adapter, parsing, re-ask, cache,
retries and rate limits as the program it grades. Its LM usage is added up in
`JudgeRunner.usage` so reports can show what judging cost.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.modules import Predict
from promptc.core.program import Program
from promptc.core.signature import FieldSpec, Signature
from promptc.core.types import FieldType, as_text
from promptc.lm.base import LM, Usage
from promptc.metrics.base import MetricResult
from promptc.metrics.builtin import MetricFn, MetricInputError, read_gold, read_prediction

JUDGE_INSTRUCTIONS = (
    "You are a strict, fair grader. Grade the prediction against the rubric, using the gold "
    "answer as the reference when one is given. Give a score between 0 and 1 (1 = fully meets "
    "the rubric, 0 = does not meet it at all) and one or two sentences of feedback saying what "
    "is wrong or missing."
)
NO_GOLD = "(no reference answer)"

_STR = FieldType(kind="str")
JUDGE_SIGNATURE = Signature(
    name="llm_judge",
    instructions=JUDGE_INSTRUCTIONS,
    inputs=(
        FieldSpec(name="inputs", type=_STR, desc="the task's inputs, one 'name: value' per line"),
        FieldSpec(name="gold", type=_STR, desc="the reference answer"),
        FieldSpec(name="prediction", type=_STR, desc="the answer to grade"),
        FieldSpec(name="rubric", type=_STR, desc="what a good answer must do"),
    ),
    outputs=(
        FieldSpec(name="score", type=FieldType(kind="float"), desc="a number from 0 to 1"),
        FieldSpec(name="feedback", type=_STR, desc="what is wrong or missing, briefly"),
    ),
)


def judge_lm_name(lms: Mapping[str, LM], requested: str | None) -> str:
    """The LM a judge uses: the one asked for, else 'judge' if defined, else 'default'."""
    if requested:
        return requested
    return "judge" if "judge" in lms else "default"


def _inputs_text(example: Mapping[str, Any], gold_field: str) -> str:
    input_keys = getattr(example, "input_keys", ())
    keys = [k for k in input_keys if k in example] or [k for k in example if k != gold_field]
    return "\n".join(f"{k}: {as_text(example[k])}" for k in keys) or "(none)"


class JudgeRunner:
    """Builds and runs llm_judge programs on the given LMs (the graded program's LMs)."""

    def __init__(self, lms: Mapping[str, LM]):
        self.lms: dict[str, LM] = dict(lms)
        self.usage = Usage()  # what every judge call cost, summed

    def program(self, lm: str | None = None) -> Program:
        """The one-step judge program on LM `lm` (see `judge_lm_name`)."""
        name = judge_lm_name(self.lms, lm)
        if name not in self.lms:
            raise ValueError(f"llm_judge needs an LM named '{name}' "
                             f"(configured: {', '.join(self.lms) or 'none'})")
        step = Step(Predict(JUDGE_SIGNATURE, name="llm_judge", lm=name), bindings={})
        return GraphProgram([step], name="llm_judge", lms=self.lms)

    async def grade(self, program: Program, *, inputs: str, gold: str, prediction: str,
                    rubric: str) -> MetricResult:
        """Ask the judge; the score is clamped to [0, 1]. Failures raise (StepFailed, LMError)."""
        result = await program.acall({"inputs": inputs, "gold": gold, "prediction": prediction,
                                      "rubric": rubric})
        self.usage.add(result.usage)
        score = float(result["score"])
        if not math.isfinite(score):
            raise ValueError(f"the judge returned a non-finite score: {score}")
        feedback = str(result.get("feedback") or "").strip() or None
        return MetricResult(score=min(1.0, max(0.0, score)), feedback=feedback)

    def metric(self, *, rubric: str, field: str, gold: str, lm: str | None = None,
               gold_required: bool = False) -> MetricFn:
        """An async row-level metric grading `prediction[field]` against `example[gold]`.

        Without `gold_required`, a missing gold field is graded on the rubric alone.
        """
        program = self.program(lm)

        async def llm_judge(example: Mapping[str, Any], prediction: Mapping[str, Any],
                            trace: Any = None) -> MetricResult:
            value = read_prediction(prediction, field)
            try:
                gold_text = as_text(read_gold(example, gold))
            except MetricInputError:
                if gold_required:
                    raise
                gold_text = NO_GOLD
            return await self.grade(program, inputs=_inputs_text(example, gold), gold=gold_text,
                                    prediction=as_text(value), rubric=rubric)

        return llm_judge
