"""Where a job's program comes from: a spec, a spec plus an artifact, or an artifact alone.

`LoadedProgram` is a program together with the runtime it runs on (LMs, cache,
retrievers) and what came with it (LM settings, declared metrics, the spec). It owns
that runtime: `close()` / `with` / `async with` close it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from promptc.core.program import Program
from promptc.errors import UsageError
from promptc.runtime import Runtime
from promptc.spec.lms import LMOptions

if TYPE_CHECKING:
    from promptc.core.example import Prediction
    from promptc.metrics.config import MetricConfig
    from promptc.spec.loader import LoadedSpec
    from promptc.spec.models import EmbedderConfig, LMConfig

SPEC_SUFFIXES = (".yaml", ".yml")


@dataclass
class LoadedProgram:
    """A runnable program, the runtime it owns, and its metadata."""

    program: Program
    runtime: Runtime = field(default_factory=Runtime)
    lm_configs: dict[str, LMConfig] = field(default_factory=dict)
    spec: LoadedSpec | None = None
    metrics: list[MetricConfig] | None = None  # declared by the artifact when there is no spec
    label: str = "<program>"
    artifact: Path | None = None  # the program.json (or folder) it was loaded from
    embedder: EmbedderConfig | None = None  # the spec's or artifact's `embedder:`
    options: LMOptions | None = None  # the overrides it was loaded with (replay needs them)

    @property
    def concurrency(self) -> int:
        """Rows in flight: the default LM's `concurrency` (16 when unknown)."""
        default = self.lm_configs.get("default")
        return default.concurrency if default is not None else 16

    def data_path(self, split: str) -> Path | None:
        """The spec's `data.SPLIT` file, if there is a spec and it names one."""
        return self.spec.data_path(split) if self.spec else None

    def __call__(self, **inputs: Any) -> Prediction:
        return self.program(**inputs)

    async def acall(self, inputs: Mapping[str, Any]) -> Prediction:
        return await self.program.acall(inputs)

    def close(self) -> None:
        self.runtime.close()

    async def aclose(self) -> None:
        await self.runtime.aclose()

    def __enter__(self) -> LoadedProgram:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> LoadedProgram:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


# What every job accepts as its program.
ProgramLike = Program | LoadedProgram | str | Path


def load_program(path: str | Path, *, spec: str | Path | None = None, model: str | None = None,
                 base_url: str | None = None, cache: bool = True, cache_dir: str | Path | None = None,
                 offline: bool = False, concurrency: int | None = None) -> LoadedProgram:
    """A compiled artifact (`program.json` or its folder), or a spec file, ready to run.

    With `spec`, the artifact's instructions and demos are applied to the spec's program
    (which must match it). The returned program owns its runtime: close it with `close()`
    or `with`; calls and jobs already release connections and the cache when they end.
    """
    options = lm_options(model=model, base_url=base_url, cache=cache, cache_dir=cache_dir,
                         offline=offline, concurrency=concurrency)
    p = Path(path)
    if spec is None and p.suffix in SPEC_SUFFIXES:
        return load_source(p, None, options)
    return load_source(Path(spec) if spec is not None else None, p, options)


def lm_options(*, model: str | None = None, base_url: str | None = None, cache: bool = True,
               cache_dir: str | Path | None = None, offline: bool = False, concurrency: int | None = None,
               rpm: int | None = None, tpm: int | None = None, timeout: float | None = None,
               max_prompt_tokens: int | None = None) -> LMOptions:
    """LM overrides as the CLI flags spell them; `cache_dir` holds `cache.sqlite`."""
    if offline and not cache:
        raise UsageError("--offline reads answers from the cache; it cannot be combined with --no-cache")
    return LMOptions(model=model, base_url=base_url, concurrency=concurrency, rpm=rpm, tpm=tpm,
                     timeout=timeout, cache=cache, offline_only=offline, max_prompt_tokens=max_prompt_tokens,
                     cache_path=Path(cache_dir) / "cache.sqlite" if cache_dir else None)


def load_source(spec: Path | None, artifact: Path | None, options: LMOptions) -> LoadedProgram:
    """Load what the command line names; an artifact with a spec must match it."""
    from promptc.artifacts.program_file import apply_artifact, load_artifact
    from promptc.spec.loader import load

    if spec is None and artifact is None:
        raise UsageError("give a SPEC file, or --program with a compiled artifact")
    if spec is not None:
        loaded = load(spec, options=options)
        program = loaded.program
        if artifact is not None:
            try:
                program = apply_artifact(program, load_artifact(artifact))
            except BaseException:
                loaded.runtime.close()
                raise
        return LoadedProgram(program, loaded.runtime, loaded.lm_configs, loaded, None, str(spec), artifact,
                             loaded.document.embedder, options)
    assert artifact is not None
    return _from_artifact(artifact, options)


def _from_artifact(artifact: Path, options: LMOptions) -> LoadedProgram:
    from promptc.artifacts.program_file import load_artifact
    from promptc.spec.lms import build_runtime, resolve_lm_configs
    from promptc.spec.models import SpecDocument

    art = load_artifact(artifact)
    # The artifact's LM settings, with the same overrides a spec would get.
    doc = SpecDocument.model_construct(lm=None, lms=dict(art.lms), prices=dict(art.prices), program=[])
    problems: list[str] = []
    configs = resolve_lm_configs(doc, options, lambda where, msg: problems.append(msg))
    if problems:
        raise UsageError(f"{artifact}: " + "; ".join(problems))
    runtime = build_runtime(art.prices, configs, options, embedder=art.embedder)
    try:
        program = art.build(runtime.lms, runtime.embedders)
    except BaseException:
        runtime.close()
        raise
    runtime.retrievers.update(program.retrievers)  # built from the artifact's copy of the spec
    return LoadedProgram(program, runtime, configs, None, list(art.metric) or None, str(artifact), artifact,
                         art.embedder, options)


def as_loaded(program: ProgramLike) -> tuple[LoadedProgram, bool]:
    """(the program as a LoadedProgram, whether this call opened it and must close it)."""
    if isinstance(program, LoadedProgram):
        return program, False
    if isinstance(program, Program):
        return LoadedProgram(program, label=program.name), False
    if isinstance(program, (str, Path)):
        return load_program(program), True
    raise UsageError(f"expected a Program, a LoadedProgram or a path, got {type(program).__name__}")

