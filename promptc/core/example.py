"""Examples (labelled data rows) and Predictions (a program's outputs plus its trace)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from promptc.core.trace import Trace
from promptc.lm.base import Usage


class Example(dict[str, Any]):
    """A data row. `input_keys` says which of its fields are program inputs."""

    def __init__(self, data: Mapping[str, Any] | None = None, *, input_keys: Iterable[str] = (), **kw: Any):
        super().__init__(data or {}, **kw)
        self.input_keys: tuple[str, ...] = tuple(input_keys)

    def inputs(self) -> dict[str, Any]:
        return {k: self[k] for k in self.input_keys if k in self}

    def labels(self) -> dict[str, Any]:
        return {k: v for k, v in self.items() if k not in self.input_keys}

    def with_inputs(self, *keys: str) -> Example:
        return Example(self, input_keys=keys)


class Prediction(dict[str, Any]):
    """A program's final outputs; attribute access works too (`pred.answer`)."""

    def __init__(self, outputs: Mapping[str, Any], *, trace: Trace | None = None):
        super().__init__(outputs)
        self.trace = trace or Trace()

    @property
    def usage(self) -> Usage:
        return self.trace.usage

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None
