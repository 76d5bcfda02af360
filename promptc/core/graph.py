"""The program graph: steps, loops and branches, and the static check of their field flow.

Nodes:
- `Step`: a module with input bindings and an optional `when` condition;
- `Repeat`: a body run `times` times, with local state variables that persist across
  iterations (e.g. a `context` list the body appends to, de-duplicated) and after the loop;
- `Branch`: cases tried in order, each with a condition (the last may have none: `else`);
  the first case whose condition holds runs.

References (`SOURCE.FIELD`) name a program input (`input.x`), a step's output
(`retrieve.passages`), a loop's state (`hops.context`) or a branch's result (`route.reply`:
the outputs shared by the last step of every case). `check_flow` walks the graph in order
and reports every reference that is read before it can exist, or with the wrong type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promptc.core.condition_check import check_condition
from promptc.core.modules import SignatureModule
from promptc.core.ref import INPUT, Ref
from promptc.core.signature import FieldSpec
from promptc.core.types import FieldType


@dataclass
class Step:
    """A module placed in a program, with explicit bindings for some of its inputs."""

    module: SignatureModule
    bindings: Mapping[str, Ref] = field(default_factory=dict)
    when: Any = None  # a promptc.core.conditions.Condition, or None

    @property
    def name(self) -> str:
        return self.module.name


@dataclass
class StateVar:
    """A loop-local variable: starts at `init`; after each iteration `append`s or `set`s a value."""

    name: str
    type: FieldType
    init: Any = None
    append: Ref | None = None
    set: Ref | None = None
    dedupe: bool = False

    def update(self, current: Any, value: Any) -> Any:
        if self.set is not None:
            return value
        items = list(current or []) + (list(value) if isinstance(value, list) else [value])
        if self.dedupe:
            seen: list[Any] = []
            for item in items:
                if item not in seen:
                    seen.append(item)
            items = seen
        return items


@dataclass
class Repeat:
    name: str
    times: int
    body: list[Node]
    state: list[StateVar] = field(default_factory=list)
    when: Any = None


@dataclass
class Case:
    when: Any  # None: the else case
    body: list[Node]


@dataclass
class Branch:
    name: str
    cases: list[Case]
    when: Any = None


Node = Step | Repeat | Branch


@dataclass(frozen=True)
class FlowProblem:
    """A field-flow error; `path` is the node's position, e.g. (1, 'steps', 0)."""

    path: tuple[Any, ...]
    field: str | None
    message: str
    where: str = "node"  # node | inputs | when | state


def walk_steps(nodes: Sequence[Node]) -> list[Step]:
    """Every Step in execution order (depth first)."""
    out: list[Step] = []
    for node in nodes:
        if isinstance(node, Step):
            out.append(node)
        elif isinstance(node, Repeat):
            out.extend(walk_steps(node.body))
        else:
            for case in node.cases:
                out.extend(walk_steps(case.body))
    return out


@dataclass
class Env:
    """What can be read at a point of the program: sources -> fields, in the order they appeared."""

    produced: dict[str, dict[str, FieldSpec]] = field(default_factory=dict)
    inputs: dict[str, FieldSpec] = field(default_factory=dict)

    def copy(self) -> Env:
        return Env({k: dict(v) for k, v in self.produced.items()}, self.inputs)

    def type_of(self, ref: Ref) -> FieldType | None:
        if ref.source == INPUT:
            known = self.inputs.get(ref.field)
            return known.type if known else None
        spec = self.produced.get(ref.source, {}).get(ref.field)
        return spec.type if spec else None

    def nearest(self, name: str) -> Ref:
        for source in reversed(list(self.produced)):
            if name in self.produced[source]:
                return Ref(source, name)
        return Ref(INPUT, name)


class FlowChecker:
    """Binds step inputs and checks every reference of a graph (see the module docstring)."""

    def __init__(self) -> None:
        self.problems: list[FlowProblem] = []
        self.bindings: dict[str, dict[str, Ref]] = {}
        self.names: set[str] = set()
        self.env = Env()

    def run(self, nodes: Sequence[Node]) -> None:
        self._nodes(nodes, self.env, ())

    def _name(self, name: str, path: tuple[Any, ...]) -> None:
        if name in self.names or name == INPUT:
            self.problems.append(FlowProblem(path, None, f"duplicate name '{name}'"))
        self.names.add(name)

    def _condition(self, cond: Any, env: Env, path: tuple[Any, ...]) -> None:
        if cond is None:
            return
        for problem in check_condition(cond, env.type_of):
            self.problems.append(FlowProblem(path, None, problem, where="when"))

    def _nodes(self, nodes: Sequence[Node], env: Env, path: tuple[Any, ...]) -> None:
        for i, node in enumerate(nodes):
            here = (*path, i)
            self._condition(node.when, env, here)
            if isinstance(node, Step):
                self._step(node, env, here)
            elif isinstance(node, Repeat):
                self._repeat(node, env, here)
            else:
                self._branch(node, env, here)

    def _step(self, step: Step, env: Env, path: tuple[Any, ...]) -> None:
        self._name(step.name, path)
        sig = step.module.signature
        for name in step.bindings:
            if sig.input(name) is None:
                self.problems.append(FlowProblem(path, name, f"'{name}' is not an input of signature "
                                                 f"'{sig.name}' (inputs: {', '.join(sig.input_names) or 'none'})",
                                                 where="inputs"))
        bound: dict[str, Ref] = {}
        for f in sig.inputs:
            ref = step.bindings.get(f.name) or env.nearest(f.name)
            problem = self._check_ref(ref, f, step.name, env)
            if problem:
                where = "inputs" if f.name in step.bindings else "node"
                self.problems.append(FlowProblem(path, f.name, problem, where=where))
            bound[f.name] = ref
        self.bindings[step.name] = bound
        if step.when is None:  # a conditional step's outputs can't be relied on afterwards
            env.produced[step.name] = {o.name: o for o in step.module.produces.outputs}

    def _repeat(self, loop: Repeat, env: Env, path: tuple[Any, ...]) -> None:
        self._name(loop.name, path)
        if loop.times < 1:
            self.problems.append(FlowProblem(path, None, "repeat must be at least 1"))
        env.produced[loop.name] = {v.name: FieldSpec(name=v.name, type=v.type) for v in loop.state}
        inner = env.copy()
        self._nodes(loop.body, inner, (*path, "steps"))
        for var in loop.state:
            ref = var.append or var.set
            if ref is None:
                continue
            source = inner.type_of(ref)
            if source is None:
                self.problems.append(FlowProblem(path, var.name, f"'{ref}' is not produced in the loop body",
                                                 where="state"))
            elif var.append is not None and not _list_accepts(var.type, source):
                self.problems.append(FlowProblem(path, var.name, f"cannot append {source.display()} "
                                                 f"('{ref}') to {var.type.display()}", where="state"))
            elif var.set is not None and not var.type.accepts(source):
                self.problems.append(FlowProblem(path, var.name, f"cannot set {var.type.display()} from "
                                                 f"{source.display()} ('{ref}')", where="state"))
        if loop.when is None:
            env.produced.update({k: v for k, v in inner.produced.items() if k not in env.produced})

    def _branch(self, branch: Branch, env: Env, path: tuple[Any, ...]) -> None:
        self._name(branch.name, path)
        finals: list[dict[str, FieldSpec]] = []
        for j, case in enumerate(branch.cases):
            here = (*path, "cases", j)
            self._condition(case.when, env, here)
            if case.when is None and j != len(branch.cases) - 1:
                self.problems.append(FlowProblem(here, None, "only the last case may be the else case"))
            inner = env.copy()
            self._nodes(case.body, inner, (*here, "steps"))
            finals.append(last_outputs(case.body))
        has_else = bool(branch.cases) and branch.cases[-1].when is None
        shared = common_fields(finals) if has_else else {}
        if branch.when is None:
            env.produced[branch.name] = shared

    def _check_ref(self, ref: Ref, target: FieldSpec, step_name: str, env: Env) -> str | None:
        if ref.source == INPUT:
            known = env.inputs.get(ref.field)
            if known is None:
                env.inputs[ref.field] = FieldSpec(name=ref.field, type=target.type, desc=target.desc)
                return None
            if not (known.type.accepts(target.type) or target.type.accepts(known.type)):
                return (f"program input '{ref.field}' is used as {target.type.display()} here but as "
                        f"{known.type.display()} by an earlier step")
            return None
        if ref.source == step_name:
            return f"'{ref}' refers to the step's own output"
        if ref.source not in env.produced:
            return (f"'{ref}' is read before it can exist: '{ref.source}' does not run unconditionally "
                    "before this step")
        source = env.produced[ref.source].get(ref.field)
        if source is None:
            have = ", ".join(env.produced[ref.source]) or "none"
            return f"'{ref.source}' has no output '{ref.field}' (has: {have})"
        if not target.type.accepts(source.type):
            return (f"type mismatch: '{ref}' is {source.type.display()} but input "
                    f"'{target.name}' of step '{step_name}' is {target.type.display()}")
        return None


@dataclass
class Flow:
    """The result of checking a graph once: every step's input bindings, the program's
    inputs and outputs, and the problems found (empty when the graph is sound)."""

    bindings: dict[str, dict[str, Ref]]
    inputs: list[FieldSpec]
    outputs: dict[str, FieldSpec]
    problems: list[FlowProblem]


def check_flow(nodes: Sequence[Node]) -> Flow:
    """Bind every step input and type-check the flow of `nodes`."""
    checker = FlowChecker()
    checker.run(nodes)
    return Flow(checker.bindings, list(checker.env.inputs.values()), last_outputs(nodes), checker.problems)


def last_outputs(nodes: Sequence[Node]) -> dict[str, FieldSpec]:
    """The outputs a block ends with: its last node's (a branch's shared fields)."""
    if not nodes:
        return {}
    node = nodes[-1]
    if isinstance(node, Step):
        return {} if node.when is not None else {o.name: o for o in node.module.produces.outputs}
    if isinstance(node, Repeat):
        return last_outputs(node.body)
    has_else = bool(node.cases) and node.cases[-1].when is None
    return common_fields([last_outputs(c.body) for c in node.cases]) if has_else else {}


def common_fields(blocks: Sequence[Mapping[str, FieldSpec]]) -> dict[str, FieldSpec]:
    """Fields every block has, typed by the narrowest type that holds all of them."""
    if not blocks:
        return {}
    out: dict[str, FieldSpec] = {}
    for name, spec in blocks[0].items():
        specs = [spec, *(b.get(name) for b in blocks[1:])]
        if any(s is None for s in specs):
            continue
        widest = widen([s.type for s in specs if s is not None])
        if widest is not None:
            out[name] = FieldSpec(name=name, type=widest, desc=spec.desc)
    return out


def widen(types: Sequence[FieldType]) -> FieldType | None:
    """One type that accepts every one of `types` (enums merge their values), or None."""
    if all(t.kind == "enum" for t in types):
        values: list[str] = []
        for t in types:
            values += [v for v in t.values or () if v not in values]
        return FieldType(kind="enum", values=tuple(values))
    for candidate in types:
        if all(candidate.accepts(t) for t in types):
            return candidate
    if all(t.kind in ("str", "enum") for t in types):
        return FieldType(kind="str")
    if all(t.kind in ("int", "float") for t in types):
        return FieldType(kind="float")
    return None


def _list_accepts(target: FieldType, source: FieldType) -> bool:
    if target.kind != "list" or target.item is None:
        return False
    if source.kind == "list" and source.item is not None:
        return target.item.accepts(source.item)
    return target.item.accepts(source)
