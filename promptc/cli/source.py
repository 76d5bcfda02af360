"""Where a command's program comes from: a spec, a spec plus an artifact, or an artifact alone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from promptc.errors import UsageError

if TYPE_CHECKING:  # imported for real inside load_source: `promptc --help` must stay fast
    from promptc.core.program import Program
    from promptc.metrics.config import MetricConfig
    from promptc.spec.lms import LMOptions
    from promptc.spec.loader import LoadedSpec
    from promptc.spec.models import LMConfig

OptionalSpecArg = Annotated[Path | None, typer.Argument(
    help="The spec file (YAML). May be left out when --program gives a compiled artifact.",
    show_default=False, metavar="[SPEC]")]


@dataclass
class Source:
    """A runnable program and what came with it."""

    program: Program
    lm_configs: dict[str, LMConfig]
    loaded: LoadedSpec | None
    metrics: list[MetricConfig] | None  # from the artifact when there is no spec
    label: str

    def data_path(self, split: str) -> Path | None:
        return self.loaded.data_path(split) if self.loaded else None


def load_source(spec: Path | None, artifact: Path | None, options: LMOptions) -> Source:
    """Load what the command line names; an artifact with a spec must match it."""
    from promptc.artifacts.program_file import apply_artifact, load_artifact
    from promptc.spec.loader import load

    if spec is None and artifact is None:
        raise UsageError("give a SPEC file, or --program with a compiled artifact")
    if spec is not None:
        loaded = load(spec, options=options)
        program = loaded.program
        if artifact is not None:
            program = apply_artifact(program, load_artifact(artifact))
        return Source(program, loaded.lm_configs, loaded, None, str(spec))
    assert artifact is not None
    art = load_artifact(artifact)
    from promptc.spec.lms import build_lms, resolve_lm_configs
    from promptc.spec.models import SpecDocument

    # The artifact's LM settings, with the same command-line overrides a spec would get.
    doc = SpecDocument.model_construct(lm=None, lms=dict(art.lms), prices=dict(art.prices), program=[])
    problems: list[str] = []
    configs = resolve_lm_configs(doc, options, lambda where, msg: problems.append(msg))
    if problems:
        raise UsageError(f"{artifact}: " + "; ".join(problems))
    program = art.build(build_lms(art.prices, configs, options))
    return Source(program, configs, None, list(art.metric) or None, str(artifact))
