"""Modules compose: the base class every unit of a program shares.

A `Module` holds other modules and `Predict`s as attributes (also inside lists, tuples
and dicts). `Predict` is the one tunable leaf: each distinct LM call a program can make
belongs to one predictor, with its own signature, instructions and demos, and
`named_predictors()` lists them all by path, so an optimizer sees every prompt the
program really sends.

Paths follow the attributes (`hops.0.search`), with one shortening: a module that holds a
single predictor gives it the module's own path. A `chain_of_thought` step named `solve`
therefore has one predictor, `solve`; a `react` step named `agent` has two,
`agent.react` and `agent.extract`.

Calling a module (`await module(question=...)`) inside a running program uses that
run's LMs, retrievers and trace, found through a context variable the program sets.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar

from promptc.core.adapter import ChatAdapter
from promptc.core.example import Prediction
from promptc.core.trace import Trace
from promptc.errors import UsageError
from promptc.lm.base import LM


@dataclass
class CallContext:
    """What a module needs to make a call: LMs by name, the adapter, the trace to append to,
    and the run's other resources (retrievers, tools, embedders), all owned by the runtime."""

    lms: Mapping[str, LM]
    adapter: ChatAdapter = field(default_factory=ChatAdapter)
    trace: Trace = field(default_factory=Trace)
    sample_index: int = 0
    temperature: float | None = None  # None: the LM's own setting
    # Named non-LM resources a step may use: retrievers and tools (see promptc.core.tools).
    retrievers: Mapping[str, Any] = field(default_factory=dict)
    tools: Mapping[str, Any] = field(default_factory=dict)
    # Text embedders by name (`async embed(texts) -> vectors`), for per-input demo selection.
    embedders: Mapping[str, Any] = field(default_factory=dict)

    def retriever(self, name: str) -> Any:
        try:
            return self.retrievers[name]
        except KeyError:
            raise UsageError(f"no retriever named {name!r} is configured "
                             f"(have: {', '.join(self.retrievers) or 'none'})") from None

    def tool(self, name: str) -> Any:
        try:
            return self.tools[name]
        except KeyError:
            raise UsageError(f"no tool named {name!r} is configured (have: {', '.join(self.tools) or 'none'})") from None

    def lm(self, name: str | None) -> LM:
        key = name or "default"
        try:
            return self.lms[key]
        except KeyError:
            raise UsageError(f"no LM named {key!r} is configured (have: {', '.join(self.lms) or 'none'})") from None


_current: ContextVar[CallContext | None] = ContextVar("promptc_call_context", default=None)


def current_context() -> CallContext:
    """The context of the program run in progress (UsageError outside one)."""
    ctx = _current.get()
    if ctx is None:
        raise UsageError("a module was called outside a program run; call the program, not the module")
    return ctx


class running:
    """`with running(ctx):` makes `ctx` the context modules called inside see."""

    def __init__(self, ctx: CallContext):
        self.ctx = ctx

    def __enter__(self) -> CallContext:
        self._token = _current.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


class Module:
    """Base class of modules: holds predictors and sub-modules, runs with `acall` or `forward`.

    Built-in modules (`ChainOfThought`, `ReAct`, ...) implement `acall(inputs, ctx)`.
    Python programs subclass it, set `signature = "question -> answer"` and write
    `async def forward(self, **inputs)`; their predictors are found by attribute.
    """

    kind: ClassVar[str] = "module"
    is_predictor: ClassVar[bool] = False  # True for Predict, the one tunable leaf
    name: str = ""

    def named_predictors(self) -> list[tuple[str, Module]]:
        """Every predictor this module holds, by attribute path (a sub-module holding a single
        predictor gives it the sub-module's own path)."""
        seen = {id(self)}
        return [(f"{key}.{path}" if path else key, predictor)
                for key, value in _children(self) for path, predictor in _predictors_of(value, seen)]

    def predictors(self) -> list[Module]:
        return [p for _, p in self.named_predictors()]

    async def forward(self, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} needs an `async def forward(self, **inputs)`")

    async def acall(self, inputs: Mapping[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Run `forward` with `ctx` as the current context; return its outputs as a dict."""
        with running(ctx):
            result = await self.forward(**inputs)
        if isinstance(result, Mapping):
            return dict(result)
        raise TypeError(f"{type(self).__name__}.forward() must return a mapping or a Prediction, "
                        f"got {type(result).__name__}")

    async def __call__(self, **inputs: Any) -> Prediction:
        """Inside a program's run (e.g. a `forward`): run with that run's LMs and trace."""
        ctx = current_context()
        return Prediction(await self.acall(inputs, ctx), trace=ctx.trace)


def _predictors_of(obj: Any, seen: set[int]) -> list[tuple[str, Module]]:
    if isinstance(obj, Module) and obj.is_predictor:
        return [("", obj)]
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found: list[tuple[str, Module]] = []
    for key, value in _children(obj):
        for path, predictor in _predictors_of(value, seen):
            found.append((f"{key}.{path}" if path else key, predictor))
    if len(found) == 1 and isinstance(obj, Module):
        return [("", found[0][1])]
    return found


def _children(obj: Any) -> list[tuple[str, Any]]:
    if isinstance(obj, Module):
        items = list(vars(obj).items())  # definition order: usually the order of the calls
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    elif isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items()]
    else:
        return []
    return [(k, v) for k, v in items if isinstance(v, (Module, list, tuple, dict))]


def predictors_under(module: Module, name: str) -> list[tuple[str, Module]]:
    """The predictors of `module` placed under `name`: one predictor takes the name itself."""
    if module.is_predictor:
        return [(name, module)]
    found = module.named_predictors()
    if len(found) == 1 and name:
        return [(name, found[0][1])]
    return [(f"{name}.{path}" if name else path, predictor) for path, predictor in found]


def assign_names(module: Module, name: str) -> None:
    """Name every sub-module by its attribute path under `name`, then every predictor by its
    predictor path, so trace records and compiled state use the same names."""
    if name:
        module.name = name
    for path, sub in modules_of(module, set()):
        sub.name = f"{name}.{path}" if name else path
    for full, predictor in predictors_under(module, name):
        predictor.name = full


def modules_of(obj: Any, seen: set[int]) -> list[tuple[str, Module]]:
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    found: list[tuple[str, Module]] = []
    for key, value in _children(obj):
        if isinstance(value, Module):
            found.append((key, value))
        found += [(f"{key}.{path}", sub) for path, sub in modules_of(value, seen)]
    return found

