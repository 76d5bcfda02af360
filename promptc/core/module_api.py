"""The Python escape hatch: programs as `promptc.Module` subclasses with a `forward()`.

    class MultiHop(promptc.Module):
        signature = "question -> answer"

        def __init__(self):
            self.generate_query = promptc.ChainOfThought("context: list[str], question -> query")
            self.retrieve = promptc.Retrieve("query -> passages: list[str]", retriever="wiki", k=3)
            self.generate_answer = promptc.ChainOfThought("context: list[str], question -> answer")

        async def forward(self, question):
            context = []
            for _ in range(2):
                query = (await self.generate_query(context=context, question=question)).query
                passages = (await self.retrieve(query=query)).passages
                context = list(dict.fromkeys(context + passages))
            return await self.generate_answer(context=context, question=question)

Predictors are found by attribute (lists, dicts and nested Modules too) and named by their
path (`generate_query`, `hops.0.search`), so compile tunes them like YAML steps; `run`,
`eval` and `export` work unchanged. Calling a predictor inside `forward` uses the LMs,
retrievers and trace of the program run that is in progress.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

from promptc.core.adapter import ChatAdapter
from promptc.core.example import Prediction
from promptc.core.graph import Step
from promptc.core.modules import CallContext, Predict
from promptc.core.program import Program, StepState
from promptc.core.signature import Signature
from promptc.core.trace import Trace
from promptc.errors import FATAL_LM_ERRORS, SpecError, StepFailed, UsageError
from promptc.lm.base import LM

_current: ContextVar[CallContext | None] = ContextVar("promptc_call_context", default=None)


def current_context() -> CallContext:
    ctx = _current.get()
    if ctx is None:
        raise UsageError("a predictor was called outside a program run; call the program, not the predictor")
    return ctx


async def call_predictor(predictor: Predict, inputs: Mapping[str, Any]) -> Prediction:
    """What `await predictor(**inputs)` does inside a Module's forward()."""
    ctx = current_context()
    return Prediction(await predictor.acall(dict(inputs), ctx), trace=ctx.trace)


class Module:
    """Base class of Python programs: set `signature`, build predictors, write `async forward`."""

    signature: ClassVar[str] = ""

    def named_predictors(self) -> list[tuple[str, Predict]]:
        found: list[tuple[str, Predict]] = []
        _collect(self, "", found, set())
        return found

    async def forward(self, **inputs: Any) -> Mapping[str, Any]:
        raise NotImplementedError("a promptc.Module needs an `async def forward(self, **inputs)`")


def _collect(obj: Any, prefix: str, out: list[tuple[str, Predict]], seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    items: list[tuple[str, Any]]
    if isinstance(obj, Module):
        items = sorted(vars(obj).items())
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    elif isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items()]
    else:
        return
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, Predict):
            out.append((name, value))
        elif isinstance(value, (Module, list, tuple, dict)):
            _collect(value, name, out, seen)


class ModuleProgram(Program):
    """A Program whose control flow is a Module's forward(); its predictors are its steps."""

    def __init__(self, module: Module, *, name: str = "program", lms: Mapping[str, LM] | None = None,
                 adapter: ChatAdapter | None = None, retrievers: Mapping[str, Any] | None = None,
                 tools: Mapping[str, Any] | None = None):
        if not module.signature:
            raise SpecError(f"{type(module).__name__} needs a class attribute `signature = \"question -> answer\"`")
        try:
            sig = Signature.parse(module.signature, name=name)
        except ValueError as exc:
            raise SpecError(f"{type(module).__name__}.signature: {exc}") from None
        named = module.named_predictors()
        if not named:
            raise SpecError(f"{type(module).__name__} has no predictors (promptc.Predict, ChainOfThought, ...)")
        for path, predictor in named:
            predictor.name = path
        self.module = module
        self.name = name
        self.nodes = [Step(module=p) for _, p in named]
        self.steps = list(self.nodes)  # type: ignore[arg-type]
        self.resolved = [{} for _ in self.steps]
        self._index = {s.name: i for i, s in enumerate(self.steps)}
        self.lms = dict(lms or {})
        self.retrievers, self.tools = dict(retrievers or {}), dict(tools or {})
        self.adapter = adapter or ChatAdapter()
        self.input_fields = list(sig.inputs)
        self._outputs = {o.name: o for o in sig.outputs}

    async def acall(self, inputs: Mapping[str, Any], *, lms: Mapping[str, LM] | None = None,
                    sample_index: int = 0, temperature: float | None = None) -> Prediction:
        ctx = CallContext(lms=lms or self.lms, adapter=self.adapter, trace=Trace(), sample_index=sample_index,
                          temperature=temperature, retrievers=self.retrievers, tools=self.tools)
        token = _current.set(ctx)
        try:
            result = await self.module.forward(**self.coerce_inputs(inputs))
        except FATAL_LM_ERRORS:
            raise
        except Exception as exc:
            raise StepFailed(ctx.trace.steps[-1].step if ctx.trace.steps else "forward", exc, ctx.trace) from exc
        finally:
            _current.reset(token)
        outputs: dict[str, Any] = {}
        for f in self.output_fields:
            value = (result or {}).get(f.name) if isinstance(result, Mapping) else getattr(result, f.name, None)
            if value is None:
                raise StepFailed("forward", ValueError(f"forward() returned no `{f.name}`"), ctx.trace)
            outputs[f.name] = f.type.coerce(value)
        return Prediction(outputs, trace=ctx.trace)

    def with_state(self, state: Mapping[str, StepState], *, lms: Mapping[str, LM] | None = None) -> Program:
        clone = copy.deepcopy(self.module)
        for path, predictor in clone.named_predictors():
            new = state.get(path)
            if new is not None:
                predictor.signature = predictor.signature.with_instructions(new.instructions)
                predictor.demos = [dict(d) for d in new.demos]
        return ModuleProgram(clone, name=self.name, lms=self.lms if lms is None else lms, adapter=self.adapter,
                             retrievers=self.retrievers, tools=self.tools)
