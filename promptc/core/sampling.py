"""Sampling modules: draw several answers and keep the best (`best_of_n`), improve on
feedback (`refine`), or compare several reasoning chains (`multi_chain_comparison`).

Each holds the predictors it calls, so compile tunes every distinct prompt: best_of_n
one (`NAME`: every sample), refine two (`NAME.attempt`: the first attempt,
`NAME.revise`: the attempts that get feedback), multi_chain_comparison two
(`NAME.sample`: the chain-of-thought samples, `NAME.compare`: the comparing call). The
step's `instructions` and `demos` seed them all (the comparing call gets no demos).
Samples are drawn at `temperature` with distinct `sample_index` values, so
each is its own cache entry and a re-run replays the same samples. Assert/suggest
`constraints` set on the module apply to the calls that produce its answer (each
sample or attempt; the comparing call).

Trace, per call of a module named NAME (`iteration` is the sample / attempt number):

* `NAME.sample` (best_of_n, multi_chain_comparison) or `NAME.attempt` (refine): one
  step per LM call, as any Predict records it.
* `NAME.select` (best_of_n, refine), module = the kind: outputs `{"scores": [...],
  "chosen": i}` (a sample that failed scores None); refine adds `"feedback"`.
* `NAME.compare` (multi_chain_comparison): the final comparing call.
* `NAME`, module = the kind: the module's own inputs and chosen outputs. This is the
  step bootstrapping turns into a demo. Its `iteration` is left to the program (the
  `repeat` loop iteration it ran in, if any).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

from promptc.core.adapter import MARKER, ChatAdapter, format_value
from promptc.core.module import CallContext
from promptc.core.modules import REASONING, Predict, SignatureModule, with_reasoning
from promptc.core.score import MetricResult
from promptc.core.signature import FieldSpec, Signature
from promptc.core.trace import Trace, TraceStep
from promptc.errors import AssertionFailed, ParseError
from promptc.lm.base import Message

Reward = Callable[[Mapping[str, Any], Mapping[str, Any]], Awaitable[MetricResult]]

FEEDBACK = FieldSpec(name="feedback", desc="Your previous attempt at this task and what was wrong "
                     "with it. Write a better answer that fixes it.")
ATTEMPTS = FieldSpec(name="attempts", desc="Several independent attempts at this task, with their "
                     "reasoning and answers.")
RATIONALE = FieldSpec(name="rationale", desc="Compare the attempts: which reasoning holds up, which "
                      "is wrong and why, leading to the most accurate answer.")
COMPARE_NOTE = ("You are given several student attempts at this task in `attempts`. Compare them "
                "holistically, work out which reasoning is correct, and give the most accurate answer.")


# -- helpers shared with react.py -------------------------------------------------------
def sub_context(ctx: CallContext, **changes: Any) -> CallContext:
    """A copy of `ctx` with its own empty trace (merge it back with `merge_trace`)."""
    return dataclasses.replace(ctx, trace=Trace(), **changes)


def merge_trace(ctx: CallContext, sub: CallContext, iteration: int | None) -> None:
    """Append `sub`'s steps to `ctx.trace`, tagged with `iteration` (unless already tagged)."""
    for step in sub.trace.steps:
        step.iteration = iteration if step.iteration is None else step.iteration
    ctx.trace.steps.extend(sub.trace.steps)


async def traced_acall(predictor: Predict, inputs: Mapping[str, Any], ctx: CallContext, *,
                       iteration: int | None, step: str, module: str = "predict",
                       shown: Signature | None = None, **changes: Any) -> dict[str, Any]:
    """`predictor.acall` labelled `step`, whose trace steps are tagged with `iteration` (even
    when it fails); `changes` adjust the context (sample_index, temperature)."""
    sub = sub_context(ctx, **changes)
    try:
        return await predictor.acall(inputs, sub, step=step, module=module, shown=shown)
    finally:
        merge_trace(ctx, sub, iteration)


def record(ctx: CallContext, step: str, module: str, inputs: Mapping[str, Any],
           outputs: Mapping[str, Any], *, iteration: int | None = None, error: str | None = None) -> TraceStep:
    """Append a TraceStep that made no LM call of its own."""
    entry = TraceStep(step=step, module=module, inputs=dict(inputs), outputs=dict(outputs),
                      iteration=iteration, error=error)
    ctx.trace.steps.append(entry)
    return entry


def defuse(text: str) -> str:
    """Text quoted into a field must not open a field of its own."""
    return MARKER.sub(lambda m: m.group(1), text)


def format_outputs(signature: Signature, outputs: Mapping[str, Any], fields: Sequence[str] = ()) -> str:
    """`name: value` lines for the given (default: all) output fields."""
    names = list(fields) or signature.output_names
    lines = []
    for name in names:
        spec = signature.output(name)
        if name in outputs:
            lines.append(f"{name}: {format_value(outputs[name], spec.type if spec else None)}")
    return defuse("\n".join(lines))


async def score(reward: Reward | None, inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> MetricResult:
    """The reward of one candidate; without a reward every parsed candidate is perfect."""
    if reward is None:
        return MetricResult(score=1.0)
    result: Any = reward(inputs, outputs)
    if inspect.isawaitable(result):
        result = await result
    return MetricResult.coerce(result)


# -- best_of_n / refine ------------------------------------------------------------------
class BestOfN(SignatureModule):
    """Draw up to `n` samples of the same prompt; keep the one the reward scores highest.

    Stops early once a sample reaches `threshold` (or 1.0 without one). Ties go to the
    earlier sample. A sample that fails to parse (or fails a hard constraint) is skipped;
    if all do, the last such error is raised. Errors of the reward propagate (the row fails).
    """

    kind: ClassVar[str] = "best_of_n"
    step_suffix: ClassVar[str] = "sample"
    records_feedback: ClassVar[bool] = False

    def __init__(self, signature: Signature | str, *, n: int = 3, reward: Reward | None = None,
                 threshold: float | None = None, temperature: float | None = 0.7,
                 name: str | None = None, demos: Sequence[Mapping[str, Any]] = (),
                 lm: str | None = None, json_mode: bool = False):
        super().__init__(signature, name=name, lm=lm, json_mode=json_mode)
        if n < 1:
            raise ValueError(f"{self.kind} needs n >= 1, got {n}")
        self.n, self.reward, self.threshold, self.temperature = n, reward, threshold, temperature
        self.max_calls = n
        self.attempt = Predict(self.signature, demos=demos, lm=lm, json_mode=json_mode)
        self._add_predictors(demos)
        self.finish_init()

    def _add_predictors(self, demos: Sequence[Mapping[str, Any]]) -> None:
        """Hook for subclasses with more predictors than the one that samples."""

    def answer_predictors(self) -> list[Predict]:
        return [self.attempt]

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Message]:
        return self.attempt.render(inputs, adapter)

    async def _attempt(self, i: int, inputs: Mapping[str, Any], ctx: CallContext, feedback: str | None,
                       sample_index: int) -> dict[str, Any]:
        return await traced_acall(self.attempt, inputs, ctx, iteration=i,
                                  step=f"{self.name}.{self.step_suffix}",
                                  sample_index=sample_index, temperature=self.temperature)

    def _feedback(self, outputs: Mapping[str, Any] | None, result: MetricResult | None,
                  error: Exception | None) -> str | None:
        return None  # best-of-n samples independently

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Sample, score, keep the best; record the scores and the choice."""
        # Scaling by n keeps the sample indices of different outer samples (e.g. bootstrap
        # rounds) disjoint, so no two draws ever share a cache entry.
        base = ctx.sample_index * self.n
        first = len(ctx.trace.steps)
        scores: list[float | None] = []
        notes: list[str | None] = []
        best: tuple[int, float, dict[str, Any]] | None = None
        last_error: ParseError | AssertionFailed | None = None
        feedback: str | None = None
        for i in range(self.n):
            try:
                outputs = await self._attempt(i, inputs, ctx, feedback, base + i)
            except (ParseError, AssertionFailed) as exc:
                last_error = exc
                scores.append(None)
                notes.append(None)
                feedback = self._feedback(None, None, exc)
                continue
            result = await score(self.reward, inputs, outputs)
            scores.append(result.score)
            notes.append(result.feedback)
            if best is None or result.score > best[1]:
                best = (i, result.score, outputs)
            # Without a threshold a perfect score still stops: no later sample can beat it.
            if result.score >= (1.0 if self.threshold is None else self.threshold):
                break
            feedback = self._feedback(outputs, result, None)
        summary: dict[str, Any] = {"scores": scores, "chosen": best[0] if best else None}
        if self.records_feedback:
            summary["feedback"] = notes
        if best is None:
            assert last_error is not None
            record(ctx, f"{self.name}.select", self.kind, {}, summary,
                   error=f"every sample failed: {last_error}")
            raise last_error
        record(ctx, f"{self.name}.select", self.kind, {}, summary)
        for entry in ctx.trace.steps[first:]:
            entry.rejected = entry.predictor is not None and entry.iteration != best[0]
        outputs = {k: best[2][k] for k in self.signature.output_names if k in best[2]}
        record(ctx, self.name, self.kind, inputs, outputs)
        return outputs


class Refine(BestOfN):
    """Like best_of_n, but each attempt below the threshold is fed back into the next.

    The first attempt is the `attempt` predictor's; later ones are the `revise`
    predictor's, whose prompt has one more input, `feedback`: the previous attempt's
    outputs (or its parse error), its score and the reward's feedback text. The best
    attempt is kept. Both start with the step's demos (which lack `feedback`; the prompt
    then simply omits it for them).
    """

    kind: ClassVar[str] = "refine"
    step_suffix: ClassVar[str] = "attempt"
    records_feedback: ClassVar[bool] = True

    def _add_predictors(self, demos: Sequence[Mapping[str, Any]]) -> None:
        if self.signature.input(FEEDBACK.name):
            raise ValueError(f"refine step '{self.name}': its signature already has an input named 'feedback'")
        self.revise = Predict(self.feedback_signature(), demos=demos, lm=self.lm, json_mode=self.json_mode)

    def answer_predictors(self) -> list[Predict]:
        return [self.attempt, self.revise]

    def feedback_signature(self) -> Signature:
        """The signature of attempts after the first: the inputs plus `feedback`."""
        return self.signature.model_copy(update={"inputs": (*self.signature.inputs, FEEDBACK)})

    def _feedback(self, outputs: Mapping[str, Any] | None, result: MetricResult | None,
                  error: Exception | None) -> str | None:
        if outputs is None:
            what = "broke a rule" if isinstance(error, AssertionFailed) else "could not be read"
            return f"Previous attempt {what}: {defuse(str(error))}"
        assert result is not None
        target = f" (the target is {self.threshold:g})" if self.threshold is not None else ""
        note = result.feedback or "no details; the answer was not good enough, try a different one."
        return (f"Previous attempt:\n{format_outputs(self.signature, outputs)}\n\n"
                f"Score: {result.score:.2f}{target}\nFeedback: {defuse(note)}")

    async def _attempt(self, i: int, inputs: Mapping[str, Any], ctx: CallContext, feedback: str | None,
                       sample_index: int) -> dict[str, Any]:
        if feedback is None:
            return await super()._attempt(i, inputs, ctx, None, sample_index)
        return await traced_acall(self.revise, {**inputs, FEEDBACK.name: feedback}, ctx, iteration=i,
                                  step=f"{self.name}.{self.step_suffix}",
                                  sample_index=sample_index, temperature=self.temperature)


# -- multi-chain comparison --------------------------------------------------------------
class MultiChainComparison(SignatureModule):
    """Sample `m` chain-of-thought attempts, then compare them in one more call (DSPy's MCC).

    The `sample` predictor writes each attempt (the step's instructions and demos); the
    `compare` predictor gets the instructions plus a note on comparing, the inputs and the
    numbered `attempts`, and writes a `rationale` before the outputs. Returns the rationale
    and the outputs. Samples that fail to parse are left out; if all do, the last parse
    error is raised.
    """

    kind: ClassVar[str] = "multi_chain_comparison"

    def __init__(self, signature: Signature | str, *, m: int = 3, temperature: float | None = 0.7,
                 name: str | None = None, demos: Sequence[Mapping[str, Any]] = (),
                 lm: str | None = None, json_mode: bool = False):
        super().__init__(signature, name=name, lm=lm, json_mode=json_mode)
        if m < 1:
            raise ValueError(f"{self.kind} needs m >= 1, got {m}")
        if self.signature.input(ATTEMPTS.name):
            raise ValueError(f"{self.kind} step '{self.name}': its signature already has an input named 'attempts'")
        self.m, self.temperature = m, temperature
        self.max_calls = m + 1
        self.sample = Predict(with_reasoning(self.signature), demos=demos, lm=lm, json_mode=json_mode,
                              optional=(REASONING.name,))
        # A missing rationale should not sink a good answer.
        self.compare = Predict(self.compare_signature(), lm=lm, json_mode=json_mode,
                               optional=(RATIONALE.name,))
        self.finish_init()

    @property
    def produces(self) -> Signature:
        if self.signature.output(RATIONALE.name):
            return self.signature
        return self.signature.prepend_output(RATIONALE)

    def compare_signature(self) -> Signature:
        """Inputs + `attempts` -> `rationale` + outputs."""
        sig = self.produces
        instructions = "\n\n".join(p for p in (sig.instructions.strip(), COMPARE_NOTE) if p)
        return sig.model_copy(update={"name": f"{sig.name}_compare", "instructions": instructions,
                                      "inputs": (*sig.inputs, ATTEMPTS)})

    def answer_predictors(self) -> list[Predict]:
        return [self.compare]

    def render(self, inputs: Mapping[str, Any], adapter: ChatAdapter | None = None) -> list[Message]:
        """The prompt of each sample (the comparing call's prompt depends on them)."""
        return self.sample.render(inputs, adapter)

    def format_attempts(self, attempts: Sequence[Mapping[str, Any]]) -> str:
        """The attempts' reasoning and answers, numbered."""
        fields = [REASONING.name, *self.signature.output_names]
        return "\n\n".join(f"Attempt {i}:\n{format_outputs(self.sample.signature, a, fields)}"
                           for i, a in enumerate(attempts, 1))

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """M samples (concurrently), then the comparing call; record the result."""
        base = ctx.sample_index * self.m
        subs = [sub_context(ctx, sample_index=base + i, temperature=self.temperature) for i in range(self.m)]
        label = f"{self.name}.sample"
        try:
            results = await asyncio.gather(
                *(self.sample.acall(inputs, s, step=label, module="chain_of_thought") for s in subs),
                return_exceptions=True)
        finally:
            for i, s in enumerate(subs):  # in sample order, whatever order they finished in
                merge_trace(ctx, s, i)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, ParseError):
                raise r
        attempts = [r for r in results if isinstance(r, dict)]
        if not attempts:
            raise next(r for r in reversed(results) if isinstance(r, ParseError))
        outputs = await self.compare.acall({**inputs, ATTEMPTS.name: self.format_attempts(attempts)}, ctx,
                                           step=f"{self.name}.compare")
        outputs = {k: outputs[k] for k in self.produces.output_names if k in outputs}
        record(ctx, self.name, self.kind, inputs, outputs)
        return outputs
