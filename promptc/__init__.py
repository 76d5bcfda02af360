"""promptc: a prompt compiler for LLM pipelines.

The Python API is the same object model the YAML loader builds:

    import promptc
    program = promptc.load_spec("specs/triage.yaml")
    prediction = program(message="My card was charged twice")
    prediction.label, prediction.trace, prediction.usage

Jobs, as the CLI runs them: `promptc.compile`, `promptc.evaluate`, `promptc.run`, and
`promptc.load_program` for a compiled artifact.

Public names are imported lazily so that `import promptc` (and `promptc --help`) stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_spec": "promptc.spec.loader",
    "load_program": "promptc.jobs.program",
    "LoadedProgram": "promptc.jobs.program",
    "compile": "promptc.jobs.compile",
    "evaluate": "promptc.jobs.evaluate",
    "compare": "promptc.jobs.compare",
    "CompileResult": "promptc.jobs.compile",
    "EvalResult": "promptc.jobs.evaluate",
    "CompareResult": "promptc.jobs.compare",
    "run": "promptc.jobs.run",
    "RunResult": "promptc.jobs.run",
    "DataFile": "promptc.runner.source",
    "Runtime": "promptc.runtime",
    "CachedLM": "promptc.lm.layers",
    "BudgetedLM": "promptc.lm.budget",
    "Program": "promptc.core.program",
    "GraphProgram": "promptc.core.graph_program",
    "PredictorState": "promptc.core.program",
    "ModuleProgram": "promptc.core.module_program",
    "Step": "promptc.core.graph",
    "Ref": "promptc.core.ref",
    "Module": "promptc.core.module",
    "Predict": "promptc.core.modules",
    "ChainOfThought": "promptc.core.modules",
    "DemoSelector": "promptc.core.demo_select",
    "Retrieve": "promptc.core.retrieve_module",
    "ReAct": "promptc.core.react",
    "BestOfN": "promptc.core.sampling",
    "Refine": "promptc.core.sampling",
    "MultiChainComparison": "promptc.core.sampling",
    "Tool": "promptc.core.tools",
    "Signature": "promptc.core.signature",
    "FieldSpec": "promptc.core.signature",
    "FieldType": "promptc.core.types",
    "Example": "promptc.core.example",
    "Prediction": "promptc.core.example",
    "Trace": "promptc.core.trace",
    "TraceStep": "promptc.core.trace",
    "ChatAdapter": "promptc.core.adapter",
    "LM": "promptc.lm.base",
    "LMRequest": "promptc.lm.base",
    "LMResponse": "promptc.lm.base",
    "Usage": "promptc.lm.base",
    "OfflineLM": "promptc.lm.offline",
    "OpenAICompatibleLM": "promptc.lm.openai_client",
    "OpenAIEmbedder": "promptc.lm.embeddings",
    "SQLiteCache": "promptc.lm.cache",
    "PromptcError": "promptc.errors",
    "SpecError": "promptc.errors",
    "InputError": "promptc.errors",
    "UsageError": "promptc.errors",
    "ParseError": "promptc.errors",
    "StepFailed": "promptc.errors",
    "LMError": "promptc.errors",
    "LMAuthError": "promptc.errors",
    "LMConfigError": "promptc.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'promptc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
