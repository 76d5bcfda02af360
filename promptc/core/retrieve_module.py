"""The `retrieve` step: a query in, the top-k passages out, from a named retriever.

A plain module: it calls a retriever, not an LM, so it holds no predictor and has
nothing for compile to tune.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from promptc.core.module import CallContext
from promptc.core.modules import SignatureModule
from promptc.core.signature import Signature
from promptc.core.trace import TraceStep

DEFAULT_SIGNATURE = "query -> passages: list[str]"


class Retrieve(SignatureModule):
    """Search `retriever` (a name resolved at call time) with the step's one str input."""

    kind: ClassVar[str] = "retrieve"

    def __init__(self, signature: Signature | str = DEFAULT_SIGNATURE, *, retriever: str, k: int = 3,
                 name: str | None = None):
        super().__init__(signature, name=name)
        sig = self.signature
        if len(sig.inputs) != 1 or sig.inputs[0].type.kind != "str":
            raise ValueError("a retrieve step takes exactly one str input (the query)")
        if len(sig.outputs) != 1 or sig.outputs[0].type.display() != "list[str]":
            raise ValueError("a retrieve step has exactly one list[str] output (the passages)")
        if k < 1:
            raise ValueError(f"a retrieve step needs k >= 1, got {k}")
        self.retriever, self.k = retriever, k
        self.max_calls = 0

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
