"""YAML spec -> Program: signatures resolved, field flow checked, LMs built, all before any call."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptc.core.modules import MODULES
from promptc.core.program import Program, Ref, Step, resolve_flow
from promptc.core.signature import FieldSpec, Signature
from promptc.core.types import FieldType
from promptc.errors import Location, SpecError
from promptc.lm.base import LM
from promptc.spec.lms import LMOptions, build_lms, resolve_lm_configs
from promptc.spec.models import FieldDecl, LMConfig, SignatureDecl, SpecDocument
from promptc.spec.source import (
    PositionMap,
    interpolate,
    load_yaml,
    load_yaml_text,
    validate_document,
)


@dataclass
class LoadedSpec:
    """A validated spec: the document, where its nodes are, and the program it builds."""

    path: Path | None
    document: SpecDocument
    positions: PositionMap
    program: Program
    lm_configs: dict[str, LMConfig] = field(default_factory=dict)

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


def load_spec(path: str | Path, *, model: str | None = None, base_url: str | None = None,
              cache: bool = True, lms: Mapping[str, LM] | None = None) -> Program:
    """The Python API: a ready-to-call Program from a spec file.

    >>> program = load_spec("specs/math.yaml")          # doctest: +SKIP
    >>> program(question="What is 2 + 3?").answer      # doctest: +SKIP
    """
    options = LMOptions(model=model, base_url=base_url, cache=cache)
    return load(path, options=options, lms=lms).program


def _build(data: Any, positions: PositionMap, file: str, path: Path | None,
           options: LMOptions | None, env: Mapping[str, str] | None,
           lms: Mapping[str, LM] | None) -> LoadedSpec:
    data = interpolate(data, positions, os.environ if env is None else env, file)
    doc = validate_document(data, positions, file)
    problems: list[tuple[Location, str]] = []

    def err(where: tuple[Any, ...], message: str) -> None:
        problems.append((positions.locate(where, file=file), message))

    signatures = _build_signatures(doc, err)
    configs = resolve_lm_configs(doc, options or LMOptions(), err)
    steps = _build_steps(doc, signatures, set(configs) | set(lms or {}), err)
    if not problems:
        _check_flow(steps, err)
    if problems:
        problems.sort(key=lambda p: (p[0].line or 0, p[0].column or 0))
        raise SpecError(problems)
    built_lms = dict(lms) if lms is not None else build_lms(doc.prices, configs, options or LMOptions())
    program = Program(steps, name=doc.name, lms=built_lms)
    return LoadedSpec(path=path, document=doc, positions=positions, program=program, lm_configs=configs)


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


def _build_steps(doc: SpecDocument, signatures: dict[str, Signature], lm_names: set[str],
                 err: Any) -> list[Step]:
    steps: list[Step] = []
    for i, decl in enumerate(doc.program):
        where = ("program", i)
        sig = _step_signature(decl.signature, decl.step, signatures, doc, (*where, "signature"), err)
        if decl.lm is not None and decl.lm not in lm_names:
            err((*where, "lm"), f"unknown LM '{decl.lm}'{_suggest(decl.lm, lm_names)}"
                f" (defined: {', '.join(sorted(lm_names))})")
        bindings: dict[str, Ref] = {}
        for fname, ref_text in decl.inputs.items():
            try:
                bindings[fname] = Ref.parse(ref_text)
            except ValueError as exc:
                err((*where, "inputs", fname), str(exc))
        if sig is None:
            continue
        if decl.instructions is not None:
            sig = sig.with_instructions(decl.instructions.strip())
        module = MODULES[decl.module](sig, name=decl.step, demos=decl.demos, lm=decl.lm,
                                      json_mode=decl.json_mode)
        steps.append(Step(module=module, bindings=bindings))
    return steps


def _step_signature(text: str, step_name: str, signatures: dict[str, Signature], doc: SpecDocument,
                    where: tuple[Any, ...], err: Any) -> Signature | None:
    if "->" in text:
        try:
            return Signature.parse(text, name=step_name)
        except ValueError as exc:
            err(where, f"invalid inline signature: {exc}")
            return None
    name = text.strip()
    if name in signatures:
        return signatures[name]
    if name in doc.signatures:
        return None  # the signature itself is broken; that error is already reported
    known = sorted(doc.signatures)
    err(where, f"unknown signature '{name}'{_suggest(name, known)}"
        + (f" (defined: {', '.join(known)})" if known else " (no `signatures:` defined; "
           "or write it inline: 'question -> answer')"))
    return None


def _check_flow(steps: list[Step], err: Any) -> None:
    _, _, problems = resolve_flow(steps)
    for p in problems:
        where: tuple[Any, ...] = ("program", p.step_index)
        if p.field and p.field in steps[p.step_index].bindings:
            where = (*where, "inputs", p.field)
        else:
            where = (*where, "signature")
        err(where, p.message)


def _suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
