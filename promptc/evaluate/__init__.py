"""Evaluation: the evaluator, statistics, records and reports.

This package shares its name with the job `promptc.evaluate(program, data, ...)`: Python
sets `promptc.evaluate` to this package as soon as any submodule is imported, so the
package itself is made callable and calling it runs `promptc.jobs.evaluate.evaluate`.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from promptc.jobs.evaluate import EvalResult


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> EvalResult:
        from promptc.jobs.evaluate import evaluate

        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
