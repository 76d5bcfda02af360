"""The program artifact (`program.json`): a self-contained, versioned program graph.

It holds every step with its typed signature and bindings, every predictor (each distinct
LM call: a step's own, or one inside a composite step such as `agent.react`) with its
tuned instructions and demos, the LM configurations (names of key variables, never keys)
and provenance, so a program can be rebuilt from it alone. `compile` writes it;
`run --program` and `promptc.load_program` read it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError, field_serializer

from promptc import __version__
from promptc.core.demo_select import DemoSelector
from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.modules import MODULES
from promptc.core.program import PredictorState, Program
from promptc.core.ref import Ref
from promptc.core.signature import Signature
from promptc.errors import UsageError, output_errors
from promptc.lm.base import LM, Price
from promptc.metrics.config import MetricConfig
from promptc.spec.models import EmbedderConfig, LMConfig

SCHEMA_VERSION: Final = 2
FILE_NAME = "program.json"


class StepArtifact(BaseModel):
    """One step: module kind, signature as declared, bindings."""

    model_config = {"extra": "forbid"}

    name: str
    module: str = Field(description="predict, chain_of_thought, retrieve, react, best_of_n, refine, ...")
    signature: Signature
    bindings: dict[str, str] = Field(default_factory=dict, description="input field -> 'input.F' or 'STEP.F'")
    lm: str | None = None
    json_mode: bool = False


class PredictorArtifact(BaseModel):
    """One tunable LM call: its full prompt signature (tuned instructions included), its fixed
    demos and, when its demos are chosen per input, the selector (pool, k, similarity, the
    pool's embedding vectors): everything `run` needs without the spec or re-embedding."""

    model_config = {"extra": "forbid"}

    name: str
    step: str = Field(description="the step that holds it")
    signature: Signature
    demos: list[dict[str, Any]] = Field(default_factory=list)
    selector: DemoSelector | None = Field(default=None, description="per-input demos (knn_few_shot)")


class ProgramArtifact(BaseModel):
    """The root of program.json."""

    model_config = {"extra": "forbid"}

    schema_version: Literal[2] = SCHEMA_VERSION
    promptc_version: str = __version__
    name: str
    steps: list[StepArtifact]
    predictors: list[PredictorArtifact] = Field(default_factory=list)
    lms: dict[str, LMConfig] = Field(default_factory=dict, description="LM settings; key variable names only")
    embedder: EmbedderConfig | None = Field(default=None, description="embeddings for demo selection")
    prices: dict[str, Price] = Field(default_factory=dict)
    metric: list[MetricConfig] = Field(default_factory=list, description="what compile optimized for")
    provenance: dict[str, Any] = Field(default_factory=dict)
    spec: dict[str, Any] | None = Field(
        default=None, description="the validated spec this was compiled from: rebuilds loops, branches, "
        "modules, constraints, retrievers and tools; `steps` then supplies the tuned state")
    base_dir: str | None = Field(default=None, description="the spec's folder, for relative corpus paths")

    @field_serializer("metric")
    def _metric_as_written(self, metric: list[MetricConfig]) -> list[dict[str, Any]]:
        # Only what the spec set, so the file reads like the spec and validates the same way.
        return [m.model_dump(mode="json", exclude_unset=True, by_alias=True) for m in metric]

    @classmethod
    def from_program(cls, program: Program, *, lm_configs: dict[str, LMConfig] | None = None,
                     prices: dict[str, Price] | None = None, metric: list[MetricConfig] | None = None,
                     provenance: dict[str, Any] | None = None, spec: dict[str, Any] | None = None,
                     base_dir: str | None = None, embedder: EmbedderConfig | None = None) -> ProgramArtifact:
        steps = [StepArtifact(name=s.name, module=s.module.kind, signature=s.module.signature,
                              bindings={k: str(v) for k, v in program.bindings(s.name).items()},
                              lm=s.module.lm, json_mode=s.module.json_mode)
                 for s in program.steps]
        predictors = [PredictorArtifact(name=name, step=program.step_of(name).name, signature=p.signature,
                                        demos=p.demos, selector=p.selector)
                      for name, p in program.named_predictors()]
        return cls(name=program.name, steps=steps, predictors=predictors, lms=dict(lm_configs or {}),
                   embedder=embedder,
                   prices=dict(prices or {}), metric=list(metric or []), provenance=dict(provenance or {}),
                   spec=spec, base_dir=base_dir)

    def state(self) -> dict[str, PredictorState]:
        """The tuned instructions and demos, by predictor name."""
        return {p.name: PredictorState(instructions=p.signature.instructions, demos=p.demos, selector=p.selector)
                for p in self.predictors}

    def build(self, lms: dict[str, LM], embedders: dict[str, Any] | None = None) -> Program:
        """A runnable Program from this artifact, with the given LMs (and embedders)."""
        if self.spec is not None:
            from promptc.spec.loader import load_data

            base = Path(self.base_dir) if self.base_dir else Path.cwd()
            program = load_data(self.spec, file=f"<artifact {self.name}>", base_dir=base, lms=lms,
                                embedders=embedders).program
            return program.with_state(self.state())
        if any(s.module not in MODULES for s in self.steps):
            raise UsageError(f"this artifact has no copy of its spec; its {', '.join(sorted({s.module for s in self.steps} - set(MODULES)))} "
                             "steps can only be rebuilt with the spec: pass SPEC too")
        steps = [Step(MODULES[s.module](s.signature, name=s.name, lm=s.lm, json_mode=s.json_mode),
                      {k: Ref.parse(v) for k, v in s.bindings.items()})
                 for s in self.steps]
        return GraphProgram(steps, name=self.name, lms=lms, embedders=embedders).with_state(self.state())

    def save(self, path: Path) -> Path:
        """Write to `path` (a file, or a folder that gets program.json). Atomic."""
        target = path / FILE_NAME if path.suffix != ".json" else path
        tmp = target.with_suffix(".json.tmp")
        try:
            with output_errors(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
                tmp.replace(target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)  # what a failed write left
        return target


def load_artifact(path: str | Path) -> ProgramArtifact:
    """Read program.json (or a folder holding it); UsageError says what is wrong."""
    p = Path(path)
    target = p / FILE_NAME if p.is_dir() else p
    if not target.exists():
        raise UsageError(f"no program artifact at {target}")
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{target}: not a JSON program artifact ({exc})") from None
    except RecursionError:
        raise UsageError(f"{target}: not a program artifact (nested too deeply)") from None
    except (OSError, ValueError) as exc:  # a folder named program.json, a too-long integer...
        raise UsageError(f"{target}: cannot read the program artifact ({exc})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise UsageError(f"{target}: artifact schema_version {version!r}; this promptc reads {SCHEMA_VERSION} "
                         "(compile again to get one)")
    try:
        return ProgramArtifact.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UsageError(f"{target}: invalid artifact at {where}: {first['msg']}") from None


def differences(spec_program: Program, artifact: ProgramArtifact) -> list[str]:
    """How an artifact's program graph differs from a spec's (empty when they match)."""
    diffs: list[str] = []
    spec_steps = {s.name: s for s in spec_program.steps}
    art_steps = {s.name: s for s in artifact.steps}
    for name in spec_steps.keys() - art_steps.keys():
        diffs.append(f"step '{name}' is in the spec but not in the artifact")
    for name in art_steps.keys() - spec_steps.keys():
        diffs.append(f"step '{name}' is in the artifact but not in the spec")
    if not diffs and list(spec_steps) != list(art_steps):
        diffs.append(f"steps are in another order: spec {list(spec_steps)}, artifact {list(art_steps)}")
    ours_p = {name for name, _ in spec_program.named_predictors()}
    theirs_p = {p.name for p in artifact.predictors}
    if not diffs and ours_p != theirs_p:
        diffs.append(f"predictors differ: spec {sorted(ours_p)}, artifact {sorted(theirs_p)}")
    for name in spec_steps.keys() & art_steps.keys():
        ours, theirs = spec_steps[name].module, art_steps[name]
        if ours.kind != theirs.module:
            diffs.append(f"step '{name}': module {ours.kind} in the spec, {theirs.module} in the artifact")
        for side in ("inputs", "outputs"):
            a = {f.name: f.type.display() for f in getattr(ours.signature, side)}
            b = {f.name: f.type.display() for f in getattr(theirs.signature, side)}
            if a != b:
                diffs.append(f"step '{name}': {side} differ: spec {_fields(a)}, artifact {_fields(b)}")
    return sorted(diffs)


def _fields(fields: dict[str, str]) -> str:
    return "(" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + ")"


def apply_artifact(spec_program: Program, artifact: ProgramArtifact) -> Program:
    """The spec's program with the artifact's instructions and demos; errors list every mismatch."""
    diffs = differences(spec_program, artifact)
    if diffs:
        raise UsageError("the artifact does not match the spec:\n  " + "\n  ".join(diffs))
    return spec_program.with_state(artifact.state())
