"""Tools: named functions an agent module (`react`) may call, with typed arguments.

A `Tool` has a name, a one-line description, its arguments (name -> type spelling such
as "str", "int", "list[str]") and an async `run(**kwargs) -> str`. Build one from a
python function (`tool_from_callable`), an import path (`tool_from_import_path`) or a
retriever (`tool_from_retriever`).

Errors are observations: `Tool.invoke` never raises for a bad call or a failing tool.
Unknown or missing arguments, arguments that can't be coerced to their type, and any
exception the tool raises come back as an observation text starting with "error:", so
the agent can read it and try something else instead of the whole row failing. The
exceptions are `promptc.errors.FATAL_LM_ERRORS` (and cancellation), which doom every
row and so propagate.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from promptc.core.imports import load_callable
from promptc.core.types import CoercionError, FieldType
from promptc.errors import FATAL_LM_ERRORS

ERROR_PREFIX = "error: "


class Retriever(Protocol):
    """Anything with a name and `async search(query, k)` returning passages (with `.text`)."""

    name: str

    async def search(self, query: str, k: int) -> list[Any]: ...


@dataclass(frozen=True)
class ToolResult:
    """What one tool call produced: the observation text, and the error if it failed."""

    observation: str
    error: str | None = None


@dataclass
class Tool:
    """A named, described function with typed arguments, callable by an agent."""

    name: str
    description: str
    args: dict[str, str]
    run: Callable[..., Awaitable[str]]
    # None: every argument in `args` is required.
    required: tuple[str, ...] | None = None
    # True when `run` also takes arguments not listed in `args` (a **kwargs function).
    extra_args: bool = False

    def check_args(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments coerced to their types; ValueError says what is wrong."""
        unknown = [k for k in args if k not in self.args]
        if unknown and not self.extra_args:
            raise ValueError(f"unknown argument(s) {', '.join(map(repr, unknown))} for tool "
                             f"'{self.name}' (it takes: {', '.join(self.args) or 'no arguments'})")
        required = self.args if self.required is None else self.required
        missing = [k for k in required if k not in args]
        if missing:
            raise ValueError(f"missing argument(s) {', '.join(map(repr, missing))} for tool '{self.name}'")
        out = dict(args)
        for key, spelling in self.args.items():
            ftype = _field_type(spelling)
            if key in out and ftype is not None:
                try:
                    out[key] = ftype.coerce(out[key])
                except CoercionError as exc:
                    raise ValueError(f"argument '{key}' of tool '{self.name}': {exc}") from None
        return out

    async def invoke(self, args: Mapping[str, Any]) -> ToolResult:
        """Call the tool; a bad call or a failure becomes an "error: ..." observation."""
        try:
            checked = self.check_args(args)
        except ValueError as exc:
            return ToolResult(ERROR_PREFIX + str(exc), error=str(exc))
        try:
            result = await self.run(**checked)
        except FATAL_LM_ERRORS:
            raise
        except Exception as exc:  # the agent sees the failure and may try another way
            message = f"{type(exc).__name__}: {exc}"
            return ToolResult(f"{ERROR_PREFIX}tool '{self.name}' raised {message}", error=message)
        return ToolResult(as_text(result))


def as_text(value: Any) -> str:
    """A tool's return value as observation text (JSON for non-strings)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@functools.lru_cache(maxsize=256)
def _field_type(spelling: str) -> FieldType | None:
    # Spellings promptc can't type (e.g. "any", "MyClass") are passed through unchecked.
    try:
        return FieldType.parse(spelling)
    except ValueError:
        return None


def _spelling(annotation: Any) -> str:
    """A type spelling for a python annotation, in promptc's type language where possible."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if isinstance(annotation, str):
        return annotation
    if annotation in (str, int, float, bool):
        return annotation.__name__
    if annotation in (dict, list):
        return "json"
    origin, params = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "Literal[" + ", ".join(repr(str(p)) for p in params) + "]"
    if origin in (typing.Union, types.UnionType):
        rest = [p for p in params if p is not type(None)]
        return _spelling(rest[0]) if len(rest) == 1 else "any"
    if origin in (list, tuple, set, frozenset) and params:
        return f"list[{_spelling(params[0])}]"
    if origin is dict:
        return "json"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _first_doc_line(fn: Any) -> str:
    doc = inspect.getdoc(fn) or ""
    return next((line.strip() for line in doc.splitlines() if line.strip()), "")


def tool_from_callable(fn: Callable[..., Any], *, name: str | None = None,
                       description: str | None = None) -> Tool:
    """A Tool from a sync or async python function; arguments from its signature."""
    if isinstance(fn, Tool):
        return fn
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        hints = {}
    args: dict[str, str] = {}
    required: list[str] = []
    extra = False
    for p in sig.parameters.values():
        if p.kind == p.VAR_KEYWORD:
            extra = True
            continue
        if p.kind == p.VAR_POSITIONAL:
            continue
        args[p.name] = _spelling(hints.get(p.name, p.annotation))
        if p.default is p.empty:
            required.append(p.name)
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))  # noqa: B004 - callable objects with an async __call__

    async def run(**kwargs: Any) -> str:
        if is_async:
            result = await fn(**kwargs)
        else:
            # A sync tool may block (HTTP, disk): keep it off the event loop other rows share.
            result = await asyncio.to_thread(functools.partial(fn, **kwargs))
            if inspect.isawaitable(result):
                result = await result
        return as_text(result)

    return Tool(name=tool_name, description=description or _first_doc_line(fn) or f"Call {tool_name}.",
                args=args, run=run, required=tuple(required), extra_args=extra)


def tool_from_import_path(path: str, *, name: str | None = None, description: str | None = None) -> Tool:
    """A Tool from `module.path:function` (or a Tool object found at that path)."""
    try:
        obj = load_callable(path)
    except ValueError as exc:
        # load_callable words its errors for metrics; the path and reason are what matter.
        raise ValueError(str(exc).replace("metric", "tool", 1)) from None
    if isinstance(obj, Tool):
        if name is None and description is None:
            return obj
        return Tool(name=name or obj.name, description=description or obj.description, args=obj.args,
                    run=obj.run, required=obj.required, extra_args=obj.extra_args)
    return tool_from_callable(obj, name=name, description=description)


def format_passages(passages: list[Any]) -> str:
    """Passages (objects with `.text`, or strings) numbered one per line."""
    if not passages:
        return "no passages found"
    texts = [p if isinstance(p, str) else str(getattr(p, "text", p)) for p in passages]
    return "\n".join(f"[{i}] {t}" for i, t in enumerate(texts, 1))


def tool_from_retriever(retriever: Retriever, *, name: str, k: int = 3,
                        description: str | None = None) -> Tool:
    """A `name(query: str)` Tool returning the retriever's top-k passages, numbered."""
    source = getattr(retriever, "name", None) or name

    async def run(query: str) -> str:
        found = retriever.search(query, k)
        passages = await found if inspect.isawaitable(found) else found
        return format_passages(list(passages))

    return Tool(name=name, args={"query": "str"}, run=run,
                description=description or f"Search {source} and return the top {k} passages for a query.")


def as_tool(obj: Any, name: str) -> Tool:
    """Whatever is configured under `name` (a Tool, a retriever, a function) as a Tool."""
    if isinstance(obj, Tool):
        return obj
    if callable(getattr(obj, "search", None)):
        return tool_from_retriever(obj, name=name)
    if callable(obj):
        return tool_from_callable(obj, name=name)
    raise TypeError(f"tool '{name}' is a {type(obj).__name__}, not a Tool, retriever or function")
