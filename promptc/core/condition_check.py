"""Static checks of `when:` conditions: references exist, enum values are real, types fit."""

from __future__ import annotations

from collections.abc import Callable

from promptc.core.conditions import Condition, _Node
from promptc.core.ref import Ref
from promptc.core.types import FieldType

_FAMILY = {"str": "str", "enum": "str", "int": "number", "float": "number", "bool": "bool",
           "list": "list"}  # json (and null) can hold anything: never flagged
_LIT_TYPES = {str: "str", bool: "bool", int: "int", float: "float"}
_ANY_LIST = FieldType(kind="list", item=FieldType(kind="json"))


class Checker:
    """Infers each node's type and collects what cannot work (see Condition.check)."""

    def __init__(self, type_of: Callable[[Ref], FieldType | None], problems: list[str]):
        self.type_of, self.problems = type_of, problems

    def infer(self, node: _Node) -> FieldType | None:
        """The node's type, or None when it could be anything (json, null, unknown)."""
        if node.kind == "lit":
            kind = _LIT_TYPES.get(type(node.value))
            return FieldType(kind=kind) if kind else None  # type: ignore[arg-type]
        if node.kind == "list":
            return _ANY_LIST
        if node.kind == "ref":
            t = self.type_of(node.value)
            if t is None:
                self.problems.append(f"unknown reference '{node.value}'")
            return t
        types = [self.infer(a) for a in node.args]
        if node.kind == "len":
            if _FAMILY.get(types[0].kind if types[0] else "") in ("bool", "number"):
                self.problems.append(f"len() needs a string or a list, but {_show(node.args[0], types[0])}")
            return FieldType(kind="int")
        if node.kind == "cmp":
            self.compare(node, node.args[0], node.args[1], types[0], types[1])
        return FieldType(kind="bool")

    def compare(self, node: _Node, left: _Node, right: _Node, lt: FieldType | None,
                rt: FieldType | None) -> None:
        op, lf, rf, bad = node.value, _family(lt), _family(rt), self.problems.append
        if op in ("<", "<=", ">", ">="):
            for side, t, fam in ((left, lt, lf), (right, rt, rf)):
                if fam and fam != "number":
                    bad(f"'{op}' needs numbers, but {_show(side, t)}")
        elif op in ("==", "!="):
            if _clash(lf, rf):
                bad(f"{_show(left, lt)} and {_show(right, rt)}, so they are never equal")
            self.enum_values(left, lt, [right])
            self.enum_values(right, rt, [left])
        elif right.kind == "list":  # x in [literals]
            items = [_Node("lit", right.col, repr(v), v) for v in right.value]
            self.enum_values(left, lt, items)
            for item in items:
                if _clash(lf, _family(self.infer(item))):
                    bad(f"{_show(left, lt)}, which is never equal to {item.src}")
        elif rf == "list" and rt is not None and rt.item is not None:  # x in list-typed field
            self.enum_values(right, rt.item, [left], whose=f"the items of {right.src}")
            if _clash(lf, _family(rt.item)):
                bad(f"{_show(left, lt)}, which is never an item of {right.src} ({rt.display()})")
        elif rf == "str":
            if lf and lf != "str":
                bad(f"'{op}' on a string needs a string on the left, but {_show(left, lt)}")
        elif rf or (right.kind == "lit" and right.value is None):
            what = _show(right, rt) if rt else "it is null"
            bad(f"'{op}' needs a list or a string on the right, but {what}")

    def enum_values(self, node: _Node, t: FieldType | None, others: list[_Node],
                    whose: str = "") -> None:
        if t is None or t.kind != "enum":
            return
        values = t.values or ()
        for other in others:
            if other.kind == "lit" and isinstance(other.value, str) and other.value not in values:
                self.problems.append(f"{other.value!r} is not a value of {whose or node.src} "
                                     f"(values: {', '.join(values)})")


def _family(t: FieldType | None) -> str | None:
    return _FAMILY.get(t.kind) if t is not None else None


def _clash(a: str | None, b: str | None) -> bool:
    """Values of these families are never equal (Python has True == 1, so bool/number may be)."""
    return bool(a and b and a != b and {a, b} != {"bool", "number"})


def _show(node: _Node, t: FieldType | None) -> str:
    spelled = t.display() if t else "null"
    if node.kind == "lit" and t is not None:  # `3 is an int`, but `classify.n is int`
        spelled = ("an " if spelled[0] in "aeiou" else "a ") + spelled
    return f"{node.src} is {spelled}"


def check_condition(condition: Condition, type_of: Callable[[Ref], FieldType | None]) -> list[str]:
    """Static problems of `condition`, given each reference's type (None: not there)."""
    problems: list[str] = []
    Checker(type_of, problems).infer(condition.root)
    return problems
