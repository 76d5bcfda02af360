"""What a job ran with: promptc version, time, program source, models and endpoint hosts.

`promptc run` writes it beside its output (`OUTPUT.meta.json`) so a finished file says
which model produced it, and so `promptc trace` can replay a row with the same program,
overrides and cache. Endpoint hosts only: never a key, never a full URL with credentials.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from promptc.errors import OutputError, UsageError
from promptc.jobs.program import LoadedProgram

SUFFIX = ".meta.json"


class Provenance(BaseModel):
    """The facts of one job, as recorded next to its output."""

    promptc_version: str
    started: str = Field(description="UTC, ISO 8601")
    spec: str | None = None
    program: str | None = Field(default=None, description="the compiled artifact, if one was used")
    models: dict[str, str] = Field(default_factory=dict, description="LM name -> model")
    endpoints: dict[str, str] = Field(default_factory=dict, description="LM name -> endpoint host")
    model_override: str | None = None
    base_url_override: str | None = None
    cache_path: str | None = None
    cache: bool = True


def provenance(source: LoadedProgram) -> Provenance:
    from promptc import __version__

    options = source.options
    spec = source.spec.path if source.spec is not None else None
    return Provenance(
        promptc_version=__version__, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        spec=str(Path(spec).resolve()) if spec else None,
        program=str(source.artifact.resolve()) if source.artifact is not None else None,
        models={name: cfg.model for name, cfg in source.lm_configs.items()},
        endpoints={name: host_of(cfg.base_url) for name, cfg in source.lm_configs.items()
                   if cfg.resolved_provider != "offline"},
        model_override=options.model if options else None,
        base_url_override=options.base_url if options else None,
        cache_path=str(options.cache_path.resolve()) if options and options.cache_path else None,
        cache=options.cache if options else True)


def host_of(base_url: str | None) -> str:
    """The host (and port) of an endpoint URL; the OpenAI API when none is set."""
    parsed = urlparse(base_url or "https://api.openai.com/v1")
    return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)


def meta_path(output: Path) -> Path:
    return output.with_name(output.name + SUFFIX)


def write_provenance(output: Path, facts: Provenance) -> Path:
    """Write `OUTPUT.meta.json` (atomically); OutputError names the path if it cannot."""
    path = meta_path(output)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(facts.model_dump(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def read_provenance(output: Path) -> Provenance:
    path = meta_path(output)
    try:
        return Provenance.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} not found: it is written by `promptc run`; for other files pass "
                         "the SPEC (and --program) the rows came from") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a promptc run record ({exc})") from None
