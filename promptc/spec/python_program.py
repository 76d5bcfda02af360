"""`program: mypkg.pipelines:MultiHop` — a spec whose program is a Python promptc.Module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from promptc.core.imports import IMPORT_PATH, load_callable
from promptc.core.module import Module
from promptc.core.module_program import ModuleProgram
from promptc.lm.base import LM


def check_import_path(path: str) -> str | None:
    """A problem with how `path` is spelled, or None."""
    if not IMPORT_PATH.fullmatch(path.strip()):
        return f"a Python program is named 'package.module:ClassName', got {path!r}"
    return None


def load_module_program(path: str, *, name: str, lms: Mapping[str, LM], retrievers: Mapping[str, Any],
                        tools: Mapping[str, Any]) -> ModuleProgram:
    """Import the Module class, instantiate it with no arguments, and wrap it as a Program."""
    cls = load_callable(path, "program")
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise ValueError(f"{path!r} is not a promptc.Module subclass")
    try:
        module = cls()
    except Exception as exc:
        raise ValueError(f"{path}() raised {type(exc).__name__}: {exc}") from None
    return ModuleProgram(module, name=name, lms=lms, retrievers=retrievers, tools=tools)
