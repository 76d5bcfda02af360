"""Loading user code by import path (`package.module:name`) for metrics, checks, tools and programs."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def check_import_path(path: str, what: str = "metric") -> str:
    """Raise ValueError unless `path` is spelled `module.sub:function`."""
    if not IMPORT_PATH.fullmatch(path.strip()):
        raise ValueError(f"python {what} {path!r} must be spelled 'module.path:function'")
    return path.strip()


def _ensure_cwd_importable() -> None:
    # `python -m promptc` puts cwd on sys.path but the `promptc` script does not; users
    # expect `metrics.py` next to their spec to import either way.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def load_callable(path: str, what: str = "metric") -> Callable[..., Any]:
    """Import `module:attr` (attr may be dotted); ValueError says the path and the reason."""
    module_name, _, attr_path = check_import_path(path, what).partition(":")
    _ensure_cwd_importable()
    importlib.invalidate_caches()
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"cannot import {what} {path!r}: {exc}") from None
    except Exception as exc:  # the user's module failed while importing
        raise ValueError(f"cannot import {what} {path!r}: importing '{module_name}' raised "
                         f"{type(exc).__name__}: {exc}") from None
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"cannot import {what} {path!r}: '{module_name}' has no attribute "
                             f"'{attr_path}'") from None
    if not callable(obj):
        raise ValueError(f"{what} {path!r} is not callable (it is a {type(obj).__name__})")
    return obj
