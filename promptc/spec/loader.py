"""YAML spec -> Program: signatures resolved, field flow checked, LMs built, all before any call."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.core.graph import Flow, Node, Step, check_flow
from promptc.core.graph_program import GraphProgram
from promptc.core.program import Program
from promptc.core.signature import FieldSpec, Signature
from promptc.core.types import FieldType
from promptc.errors import Location, SpecError
from promptc.lm.base import LM
from promptc.runtime import Runtime
from promptc.spec.lms import LMOptions, build_runtime, resolve_lm_configs
from promptc.spec.models import FieldDecl, LMConfig, SignatureDecl, SpecDocument
from promptc.spec.nodes import NodeBuilder
from promptc.spec.resources import build_resources
from promptc.spec.source import (
    PositionMap,
    interpolate,
    load_yaml,
    load_yaml_text,
)
from promptc.spec.validate import validate_document


@dataclass
class LoadedSpec:
    """A validated spec: the document, where its nodes are, the program it builds and the
    runtime (LMs, cache, retrievers) the program runs on. The caller closes the runtime."""

    path: Path | None
    document: SpecDocument
    positions: PositionMap
    program: Program
    lm_configs: dict[str, LMConfig] = field(default_factory=dict)
    runtime: Runtime = field(default_factory=Runtime)

    @property
    def file(self) -> str:
        return str(self.path) if self.path else "<string>"

    def data_path(self, split: str) -> Path | None:
        """A `data:` entry resolved against the spec's folder."""
        data = self.document.data
        value = getattr(data, split, None) if data else None
        if not value:
            return None
        p = Path(value)
        return p if p.is_absolute() or self.path is None else Path(os.path.normpath(self.path.parent / p))


def load(path: str | Path, *, options: LMOptions | None = None, env: Mapping[str, str] | None = None,
         lms: Mapping[str, LM] | None = None) -> LoadedSpec:
    """Load, validate and build a spec file. Raises SpecError with file:line:col locations."""
    p = Path(path)
    if not p.exists():
        raise SpecError(f"spec file not found: {p}", Location(file=str(p)))
    if p.is_dir():
        raise SpecError(f"{p} is a directory, not a spec file", Location(file=str(p)))
    data, positions = load_yaml(p)
    return _build(data, positions, str(p), p, options, env, lms)


def load_text(text: str, *, file: str = "<string>", options: LMOptions | None = None,
              env: Mapping[str, str] | None = None, lms: Mapping[str, LM] | None = None) -> LoadedSpec:
    """Like `load`, from a YAML string."""
    data, positions = load_yaml_text(text, file)
    return _build(data, positions, file, None, options, env, lms)


def load_data(data: dict[str, Any], *, file: str, base_dir: Path, options: LMOptions | None = None,
              lms: Mapping[str, LM] | None = None, embedders: Mapping[str, Any] | None = None) -> LoadedSpec:
    """Build from an already-validated spec dict (a compiled artifact's copy of its spec)."""
    loaded = _build(data, PositionMap(file=file), file, base_dir / "spec.yaml", options, {}, lms, embedders)
    loaded.path = None
    return loaded


def load_spec(path: str | Path, *, model: str | None = None, base_url: str | None = None,
              cache: bool = True, lms: Mapping[str, LM] | None = None) -> Program:
    """The Python API: a ready-to-call Program from a spec file.

    Calling the program (or a job run on it) releases its connections and cache when it
    ends, so the program needs no closing; after `await program.acall(...)` in your own
    event loop, `await program.aclose()`.

    >>> program = load_spec("specs/math.yaml")          # doctest: +SKIP
    >>> program(question="What is 2 + 3?").answer      # doctest: +SKIP
    """
    options = LMOptions(model=model, base_url=base_url, cache=cache)
    return load(path, options=options, lms=lms).program


def _build(data: Any, positions: PositionMap, file: str, path: Path | None,
           options: LMOptions | None, env: Mapping[str, str] | None,
           lms: Mapping[str, LM] | None, embedders: Mapping[str, Any] | None = None) -> LoadedSpec:
    if env != {}:  # an artifact's stored spec is already interpolated
        data = interpolate(data, positions, os.environ if env is None else env, file)
    doc = validate_document(data, positions, file)
    problems: list[tuple[Location, str]] = []

    def err(where: tuple[Any, ...], message: str) -> None:
        problems.append((positions.locate(where, file=file), message))

    signatures = _build_signatures(doc, err)
    configs = resolve_lm_configs(doc, options or LMOptions(), err)
    lm_holder: dict[str, LM] = {}  # filled below; rewards that call an LM judge read it lazily
    if isinstance(doc.program, str):
        from promptc.spec.python_program import check_import_path

        problem = check_import_path(doc.program)
        if problem:
            err(("program",), problem)
        nodes: list[Node] = []
    else:
        builder = NodeBuilder(doc, signatures, set(configs) | set(lms or {}), err,
                              reward_builder=lambda cfg: _reward(cfg, lm_holder))
        nodes = builder.nodes(doc.program, ("program",))
        flow = _check_flow(nodes, err) if not problems else None
    if problems:
        problems.sort(key=lambda p: (p[0].line or 0, p[0].column or 0))
        raise SpecError(problems)
    base_dir = path.parent if path else Path.cwd()
    retrievers, tools = build_resources(doc, base_dir, err)
    if problems:
        raise SpecError(problems)
    if lms is not None:  # the caller's LMs (and embedders): the runtime releases them but they stay theirs
        runtime = Runtime(lms, retrievers=retrievers, embedders=embedders)
    else:
        runtime = build_runtime(doc.prices, configs, options or LMOptions(), retrievers, doc.embedder)
    built_lms = runtime.lms
    lm_holder.update(built_lms)
    if isinstance(doc.program, str):
        from promptc.spec.python_program import load_module_program
        from promptc.spec.resources import ensure_importable

        ensure_importable(base_dir)
        try:
            program: Program = load_module_program(doc.program, name=doc.name, lms=built_lms,
                                                   retrievers=retrievers, tools=tools)
        except (ValueError, SpecError) as exc:
            raise SpecError([(positions.locate(("program",), file=file), str(exc))]) from None
    else:
        program = GraphProgram(nodes, name=doc.name, lms=built_lms, retrievers=retrievers, tools=tools,
                               flow=flow)
    program.embedders = dict(runtime.embedders)
    return LoadedSpec(path=path, document=doc, positions=positions, program=program, lm_configs=configs,
                      runtime=runtime)


def _field(name: str, decl: str | FieldDecl) -> FieldSpec:
    if isinstance(decl, str):
        return FieldSpec(name=name, type=FieldType.parse(decl))
    kind = decl.type.strip()
    if kind == "enum":
        if not decl.values:
            raise ValueError("an enum needs `values: [...]`")
        ftype = FieldType(kind="enum", values=tuple(decl.values))
    elif kind in ("json", "object"):
        ftype = FieldType(kind="json", json_schema=decl.json_schema)
    else:
        if decl.values:
            raise ValueError("`values` is only for `type: enum`")
        ftype = FieldType.parse(kind)
    return FieldSpec(name=name, type=ftype, desc=decl.desc)


def _build_signatures(doc: SpecDocument, err: Any) -> dict[str, Signature]:
    out: dict[str, Signature] = {}
    for sig_name, decl in doc.signatures.items():
        sig = _signature_from_decl(sig_name, decl, err)
        if sig is not None:
            out[sig_name] = sig
    return out


def _signature_from_decl(sig_name: str, decl: SignatureDecl, err: Any) -> Signature | None:
    fields: dict[str, list[FieldSpec]] = {"inputs": [], "outputs": []}
    ok = True
    for side in ("inputs", "outputs"):
        for fname, fdecl in getattr(decl, side).items():
            where = ("signatures", sig_name, side, fname)
            if not fname.isidentifier():
                err(where, f"invalid field name {fname!r}")
                ok = False
                continue
            try:
                fields[side].append(_field(fname, fdecl))
            except ValueError as exc:
                err(where, str(exc))
                ok = False
    clash = {f.name for f in fields["inputs"]} & {f.name for f in fields["outputs"]}
    for name in sorted(clash):
        err(("signatures", sig_name, "outputs", name), f"'{name}' is both an input and an output")
        ok = False
    if not fields["outputs"]:
        err(("signatures", sig_name, "outputs"), "a signature needs at least one output")
        ok = False
    if not ok:
        return None
    return Signature(name=sig_name, instructions=decl.instructions.strip(),
                     inputs=tuple(fields["inputs"]), outputs=tuple(fields["outputs"]))


def _check_flow(nodes: list[Node], err: Any) -> Flow:
    flow = check_flow(nodes)
    for p in flow.problems:
        where: tuple[Any, ...] = ("program", *p.path)
        if p.where == "inputs":
            where = (*where, "inputs", p.field)
        elif p.where == "when":
            where = (*where, "when")
        elif p.where == "state":
            where = (*where, "state", p.field)
        elif _is_step(nodes, p.path):
            where = (*where, "signature")
        err(where, p.message)
    return flow


def _is_step(nodes: list[Node], path: tuple[Any, ...]) -> bool:
    node: Any = nodes
    for part in path:
        if isinstance(part, int):
            node = node[part]
        elif part == "steps":
            node = node.body
        elif part == "cases":
            node = node.cases
    return isinstance(node, Step)


def _reward(cfg: Any, lms: dict[str, LM]) -> Any:
    """A best_of_n/refine reward from a metric config: scored on (inputs, outputs), no gold."""
    from promptc.metrics.config import build_metrics
    from promptc.metrics.judge import JudgeRunner

    metric = build_metrics([cfg], default_field=cfg.field or "answer", judge=JudgeRunner(lms))[0]

    async def reward(inputs: Any, outputs: Any) -> Any:
        return await metric.acall(dict(inputs), dict(outputs))

    return reward
