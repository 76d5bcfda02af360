"""Spec program entries -> graph nodes (steps, loops, branches) and their modules."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from promptc.core.conditions import Condition, ConditionError
from promptc.core.graph import Branch, Case, Node, Repeat, StateVar, Step
from promptc.core.modules import MODULES, SignatureModule
from promptc.core.ref import Ref
from promptc.core.signature import Signature
from promptc.core.types import CoercionError, FieldType
from promptc.spec.constraints import build_constraints
from promptc.spec.models import BranchDecl, RepeatDecl, SpecDocument
from promptc.spec.steps import (
    AnyStep,
    LMStep,
    MultiChainStep,
    PredictStep,
    ReActStep,
    RetrieveStep,
    SamplingStep,
)

Err = Callable[[tuple[Any, ...], str], None]


def suggest(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class NodeBuilder:
    """Builds the graph of a spec's `program:` list, reporting problems through `err`."""

    def __init__(self, doc: SpecDocument, signatures: dict[str, Signature], lm_names: set[str], err: Err,
                 reward_builder: Callable[[Any], Any] | None = None):
        self.doc, self.signatures, self.lm_names, self.err = doc, signatures, lm_names, err
        self.reward_builder = reward_builder

    def nodes(self, decls: list[Any], path: tuple[Any, ...]) -> list[Node]:
        out: list[Node] = []
        for i, decl in enumerate(decls):
            where = (*path, i)
            node: Node | None
            if isinstance(decl, RepeatDecl):
                node = self.repeat(decl, where)
            elif isinstance(decl, BranchDecl):
                node = self.branch(decl, where)
            else:
                node = self.step(decl, where)
            if node is not None:
                out.append(node)
        return out

    def condition(self, text: str | None, where: tuple[Any, ...]) -> Condition | None:
        if text is None:
            return None
        try:
            return Condition.parse(text)
        except ConditionError as exc:
            self.err(where, f"invalid condition: {exc}")
            return None

    def repeat(self, decl: RepeatDecl, where: tuple[Any, ...]) -> Repeat | None:
        state = []
        for name, var in decl.state.items():
            here = (*where, "state", name)
            try:
                ftype = FieldType.parse(var.type)
                init = ftype.coerce(var.init) if var.init is not None else None
            except (ValueError, CoercionError) as exc:
                self.err(here, str(exc))
                continue
            if var.append and var.set:
                self.err(here, "give `append` or `set`, not both")
            refs = {}
            for key in ("append", "set"):
                text = getattr(var, key)
                if text:
                    try:
                        refs[key] = Ref.parse(text)
                    except ValueError as exc:
                        self.err((*here, key), str(exc))
            if var.append and ftype.kind != "list":
                self.err((*here, "type"), f"`append` needs a list type, not {ftype.display()}")
            state.append(StateVar(name, ftype, init, refs.get("append"), refs.get("set"), var.dedupe))
        body = self.nodes(decl.steps, (*where, "steps"))
        return Repeat(decl.name, decl.repeat, body, state, self.condition(decl.when, (*where, "when")))

    def branch(self, decl: BranchDecl, where: tuple[Any, ...]) -> Branch | None:
        cases = []
        for j, case in enumerate(decl.cases):
            here = (*where, "cases", j)
            if case.otherwise and case.when is not None:
                self.err(here, "a case has `when` or `else: true`, not both")
            if not case.otherwise and case.when is None:
                self.err(here, "a case needs `when: CONDITION` (or `else: true` as the last case)")
            cond = self.condition(case.when, (*here, "when"))
            cases.append(Case(None if case.otherwise else cond, self.nodes(case.steps, (*here, "steps"))))
        return Branch(decl.branch, cases, self.condition(decl.when, (*where, "when")))

    def step(self, decl: AnyStep, where: tuple[Any, ...]) -> Step | None:
        sig = self.signature(decl.signature, decl.step, (*where, "signature"))
        lm = decl.lm if isinstance(decl, LMStep) else None
        if lm is not None and lm not in self.lm_names:
            self.err((*where, "lm"), f"unknown LM '{lm}'{suggest(lm, self.lm_names)}"
                     f" (defined: {', '.join(sorted(self.lm_names))})")
        bindings: dict[str, Ref] = {}
        for fname, ref_text in decl.inputs.items():
            try:
                bindings[fname] = Ref.parse(ref_text)
            except ValueError as exc:
                self.err((*where, "inputs", fname), str(exc))
        when = self.condition(decl.when, (*where, "when"))
        if sig is None:
            return None
        if isinstance(decl, LMStep) and decl.instructions is not None:
            sig = sig.with_instructions(decl.instructions.strip())
        module = self.module(decl, sig, where)
        if module is None:
            return None
        if isinstance(decl, LMStep) and (decl.asserts or decl.suggest):
            outputs = [o.name for o in sig.outputs if o.name != "reasoning"] or [sig.outputs[-1].name]
            try:
                module.constraints = build_constraints(
                    decl.asserts, decl.suggest, default_field=outputs[-1], max_retries=decl.max_retries,
                    output_names=[o.name for o in module.produces.outputs])
            except ValueError as exc:
                self.err((*where, "assert" if decl.asserts else "suggest"), str(exc))
        return Step(module=module, bindings=bindings, when=when)

    def module(self, decl: AnyStep, sig: Signature, where: tuple[Any, ...]) -> SignatureModule | None:
        if isinstance(decl, RetrieveStep):
            return self.retrieve(decl, sig, where)
        name, demos, lm = decl.step, decl.demos, decl.lm
        if isinstance(decl, PredictStep):
            return MODULES[decl.module](sig, json_mode=decl.json_mode, name=name, demos=demos, lm=lm)
        if isinstance(decl, ReActStep):
            from promptc.core.react import ReAct

            for t in decl.tools:
                if t not in self.doc.tools:
                    self.err((*where, "tools"), f"unknown tool '{t}'{suggest(t, self.doc.tools)} "
                             f"(have: {', '.join(self.doc.tools) or 'none defined under `tools:`'})")
            return ReAct(sig, tools=decl.tools, max_iters=decl.max_iters, name=name, demos=demos, lm=lm)
        if isinstance(decl, SamplingStep):
            from promptc.core.sampling import BestOfN, Refine

            reward = self.reward_builder(decl.reward) if self.reward_builder else None
            cls = BestOfN if decl.module == "best_of_n" else Refine
            return cls(sig, n=decl.n, reward=reward, threshold=decl.threshold,
                       temperature=decl.temperature, name=name, demos=demos, lm=lm)
        assert isinstance(decl, MultiChainStep)
        from promptc.core.sampling import MultiChainComparison

        return MultiChainComparison(sig, m=decl.m, temperature=decl.temperature, name=name,
                                    demos=demos, lm=lm)

    def retrieve(self, decl: RetrieveStep, sig: Signature, where: tuple[Any, ...]) -> SignatureModule | None:
        from promptc.core.retrieve_module import Retrieve

        have = self.doc.retrievers
        source = decl.retriever or (next(iter(have)) if len(have) == 1 else None)
        if source is None or source not in have:
            listed = ", ".join(have) or "none defined under `retrievers:`"
            self.err((*where, "retriever"), (f"unknown retriever '{source}'{suggest(source, have)}"
                                             if source else "which retriever? set `retriever:`")
                     + f" (have: {listed})")
            return None
        try:
            return Retrieve(sig, retriever=source, k=decl.k, name=decl.step)
        except ValueError as exc:
            self.err((*where, "signature"), str(exc))
            return None

    def signature(self, text: str, step_name: str, where: tuple[Any, ...]) -> Signature | None:
        if "->" in text:
            try:
                return Signature.parse(text, name=step_name)
            except ValueError as exc:
                self.err(where, f"invalid inline signature: {exc}")
                return None
        name = text.strip()
        if name in self.signatures:
            return self.signatures[name]
        if name in self.doc.signatures:
            return None  # the signature itself is broken; that error is already reported
        known = sorted(self.doc.signatures)
        self.err(where, f"unknown signature '{name}'{suggest(name, known)}"
                 + (f" (defined: {', '.join(known)})" if known else " (no `signatures:` defined; "
                    "or write it inline: 'question -> answer')"))
        return None
