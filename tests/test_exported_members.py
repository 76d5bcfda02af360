"""The public names of `import promptc` resolve, and stay importable without heavy modules."""

import subprocess
import sys

import promptc


def test_every_exported_name_resolves():
    for name in promptc.__all__:
        assert getattr(promptc, name) is not None, name
    assert {"load_spec", "Program", "Module", "ChainOfThought", "Retrieve", "ReAct"} <= set(dir(promptc))
    assert {"compile", "evaluate", "run", "load_program", "Runtime", "CachedLM"} <= set(dir(promptc))
    assert {"GraphProgram", "ModuleProgram", "PredictorState", "Predict"} <= set(dir(promptc))
    assert callable(promptc.evaluate) and promptc.evaluate.__module__ == "promptc.jobs.evaluate"


def test_import_promptc_is_light():
    code = "import sys, promptc; print([m for m in ('openai', 'pandas', 'aiohttp', 'yaml') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
