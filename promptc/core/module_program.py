"""ModuleProgram: a program whose control flow is a Python `promptc.Module`'s `forward()`.

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

The program works on its own copy of the module: predictors are found by attribute
(lists, dicts and nested Modules too) and named by their path (`generate_query`,
`hops.0.search`), so compile tunes them like YAML steps, without renaming anything of
the caller's. Calling a module inside `forward` uses the LMs, retrievers and trace of
the program run in progress.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from promptc.core.adapter import ChatAdapter
from promptc.core.graph import Step
from promptc.core.module import CallContext, Module, assign_names, modules_of, running
from promptc.core.modules import Predict, SignatureModule, typed_predictors
from promptc.core.program import Program
from promptc.core.signature import FieldSpec, Signature
from promptc.errors import FATAL_LM_ERRORS, SpecError, StepFailed
from promptc.lm.base import LM


def module_signature(module: Module) -> Signature:
    """The program signature a Module declares (`signature = "question -> answer"`)."""
    declared = getattr(module, "signature", None)
    label = type(module).__name__
    if isinstance(declared, Signature):
        return declared
    if not declared or not isinstance(declared, str):
        raise SpecError(f"{label} needs a class attribute `signature = \"question -> answer\"`")
    try:
        return Signature.parse(declared, name=label)
    except ValueError as exc:
        raise SpecError(f"{label}.signature: {exc}") from None


class ModuleProgram(Program):
    """A Program whose control flow is a Module's forward()."""

    def __init__(self, module: Module, *, name: str = "program", lms: Mapping[str, LM] | None = None,
                 adapter: ChatAdapter | None = None, retrievers: Mapping[str, Any] | None = None,
                 tools: Mapping[str, Any] | None = None, embedders: Mapping[str, Any] | None = None):
        super().__init__(name=name, lms=lms, adapter=adapter, retrievers=retrievers, tools=tools,
                         embedders=embedders)
        signature = module_signature(module)
        self.module = copy.deepcopy(module)
        assign_names(self.module, "")
        if not self.module.named_predictors():
            raise SpecError(f"{type(module).__name__} has no predictors (promptc.Predict, ChainOfThought, ...)")
        self.input_fields = list(signature.inputs)
        self._outputs = tuple(signature.outputs)
        self.steps = self._top_modules()

    @property
    def output_fields(self) -> tuple[FieldSpec, ...]:
        return self._outputs

    def named_predictors(self) -> list[tuple[str, Predict]]:
        return typed_predictors(self.module.named_predictors())

    def _top_modules(self) -> list[Step]:
        """The modules `forward` calls directly (not those inside a composite), as steps."""
        found: list[tuple[str, SignatureModule]] = []
        for path, sub in modules_of(self.module, set()):
            inside = any(path.startswith(f"{p}.") for p, _ in found)
            if isinstance(sub, SignatureModule) and not inside:
                found.append((path, sub))
        return [Step(module=m) for _, m in found]

    def clone(self, *, lms: Mapping[str, LM] | None = None) -> ModuleProgram:
        return ModuleProgram(self.module, name=self.name, lms=self.lms if lms is None else lms,
                             adapter=self.adapter, retrievers=self.retrievers, tools=self.tools,
                            embedders=self.embedders)

    async def forward(self, inputs: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        try:
            with running(ctx):
                result = await self.module.forward(**inputs)
        except FATAL_LM_ERRORS:
            raise
        except Exception as exc:
            raise StepFailed(ctx.trace.steps[-1].step if ctx.trace.steps else "forward", exc, ctx.trace) from exc
        outputs: dict[str, Any] = {}
        for f in self.output_fields:
            value = result.get(f.name) if isinstance(result, Mapping) else getattr(result, f.name, None)
            if value is None:
                raise StepFailed("forward", ValueError(f"forward() returned no `{f.name}`"), ctx.trace)
            outputs[f.name] = f.type.coerce(value)
        return outputs
