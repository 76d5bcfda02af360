"""The `retrieve` step: a query in, the top-k passages out, from a named retriever."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from promptc.core.modules import CallContext, Predict
from promptc.core.signature import Signature
from promptc.core.trace import TraceStep


class Retrieve(Predict):
    """Search `retriever` (a name resolved at call time) with the step's one str input."""

    kind: ClassVar[str] = "retrieve"

    def __init__(self, signature: Signature, *, retriever: str, k: int = 3, name: str | None = None,
                 **_: Any):
        if len(signature.inputs) != 1 or signature.inputs[0].type.kind != "str":
            raise ValueError("a retrieve step takes exactly one str input (the query)")
        if len(signature.outputs) != 1 or signature.outputs[0].type.display() != "list[str]":
            raise ValueError("a retrieve step has exactly one list[str] output (the passages)")
        super().__init__(signature, name=name)
        self.retriever, self.k = retriever, k

    def render(self, inputs: Mapping[str, Any], adapter: Any = None) -> list[Any]:
        """No chat messages: a retrieve step calls a retriever, not an LM."""
        return []

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        query = str(inputs[self.signature.inputs[0].name])
        output = self.signature.outputs[0].name
        record = TraceStep(step=self.name, module=self.kind, inputs=dict(inputs))
        ctx.trace.steps.append(record)
        try:
            passages = await ctx.retriever(self.retriever).search(query, self.k)
        except Exception as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        record.outputs = {output: [p.text for p in passages]}
        return dict(record.outputs)
