"""`when:` conditions: parsing, static checks against field types, and evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from promptc.core.condition_check import check_condition
from promptc.core.conditions import Condition, ConditionError
from promptc.core.ref import Ref
from promptc.core.types import FieldType

VALUES: dict[str, Any] = {
    "classify.intent": "refund_request",
    "classify.urgent": False,
    "classify.confidence": 0.9,
    "classify.count": 3,
    "search.passages": ["a", "b"],
    "search.empty": [],
    "input.question": "why was I charged twice?",
    "input.missing": None,
    "loop.i": 2,
    "t.yes": True,
    "t.no": False,
}


def run(text: str, **overrides: Any) -> bool:
    values = {**VALUES, **{k.replace("__", "."): v for k, v in overrides.items()}}
    return Condition.parse(text).evaluate(lambda ref: values[str(ref)])


def parse_error(text: str) -> ConditionError:
    with pytest.raises(ConditionError) as info:
        Condition.parse(text)
    assert isinstance(info.value, ValueError)
    return info.value


# -- evaluation -------------------------------------------------------------------
def test_examples_from_the_manual() -> None:
    text = "classify.intent in ['refund_request', 'double_charge'] and not classify.urgent"
    assert run(text)
    assert not run(text, classify__urgent=True)
    assert not run(text, classify__intent="other")
    text = "len(search.passages) == 0 or classify.confidence < 0.5"
    assert not run(text)
    assert run(text, search__passages=[])
    assert run(text, classify__confidence=0.2)


@pytest.mark.parametrize("text, expected", [
    ("classify.count == 3", True), ("classify.count == 4", False),
    ("classify.count != 3", False), ("classify.count != 4", True),
    ("classify.count < 4", True), ("classify.count < 3", False),
    ("classify.count <= 3", True), ("classify.count <= 2", False),
    ("classify.count > 2", True), ("classify.count > 3", False),
    ("classify.count >= 3", True), ("classify.count >= 4", False),
    ("classify.count > -1", True), ("classify.confidence >= 9e-1", True),
    ("classify.confidence == 0.9", True), ("loop.i == 2.0", True),
    ("'a' in search.passages", True), ("'z' in search.passages", False),
    ("'z' not in search.passages", True), ("'a' not in search.passages", False),
    ("'charged' in input.question", True), ("'refund' in input.question", False),
    ("classify.intent not in ['a', 'b']", True), ("classify.intent not in [\"refund_request\"]", False),
    ("classify.count in [1, 2, 3]", True), ("classify.count in []", False),
    ("t.yes == true", True), ("t.yes == True", True), ("t.no == false", True), ("t.no == False", True),
    ("input.missing == null", True), ("input.missing == None", True), ("classify.count != null", True),
    ("len(input.question) == 24", True), ("len('abc') == 3", True), ("len(search.empty) == 0", True),
    ("len(classify.intent) > 3", True),
])
def test_comparisons(text: str, expected: bool) -> None:
    assert run(text) is expected


@pytest.mark.parametrize("a", [True, False])
@pytest.mark.parametrize("b", [True, False])
@pytest.mark.parametrize("c", [True, False])
def test_boolean_truth_tables_and_precedence(a: bool, b: bool, c: bool) -> None:
    env = {"x__a": a, "x__b": b, "x__c": c}
    assert run("x.a and x.b", **env) is (a and b)
    assert run("x.a or x.b", **env) is (a or b)
    assert run("not x.a", **env) is (not a)
    assert run("not x.a or x.b", **env) is ((not a) or b)
    assert run("not (x.a or x.b)", **env) is (not (a or b))
    assert run("x.a and x.b or x.c", **env) is ((a and b) or c)
    assert run("x.a or x.b and x.c", **env) is (a or (b and c))
    assert run("(x.a or x.b) and x.c", **env) is ((a or b) and c)
    assert run("x.a and not x.b and x.c", **env) is (a and (not b) and c)
    assert run("not not x.a", **env) is a
    assert run("not x.a == x.b", **env) is (not (a == b))  # `not` binds looser than ==


def test_truthiness_is_pythons() -> None:
    for falsy in (None, 0, 0.0, "", []):
        assert not run("x.v", x__v=falsy)
        assert run("not x.v", x__v=falsy)
    for truthy in (1, -0.5, "no", ["x"], {"k": 1}):
        assert run("x.v", x__v=truthy)
    assert run("x.v and x.w", x__v="a", x__w=[1]) is True  # and/or always give booleans


def test_incompatible_runtime_comparisons_are_false() -> None:
    assert not run("input.missing < 3")
    assert not run("input.missing >= 3")
    assert not run("'a' in input.missing")
    assert not run("'a' not in input.missing")
    assert not run("classify.count in input.question")
    assert not run("len(input.missing) == 0")
    assert not run("len(classify.count) > 0")
    assert run("input.missing != 3")


def test_short_circuit_skips_later_lookups() -> None:
    seen: list[str] = []

    def lookup(ref: Ref) -> Any:
        seen.append(str(ref))
        return VALUES[str(ref)]

    assert Condition.parse("t.yes or nope.missing").evaluate(lookup)
    assert not Condition.parse("t.no and nope.missing").evaluate(lookup)
    assert seen == ["t.yes", "t.no"]


# -- literals and references ------------------------------------------------------------
@pytest.mark.parametrize("literal, value", [
    (r"'it\'s'", "it's"), (r'"say \"hi\""', 'say "hi"'), (r"'back\\slash'", "back\\slash"),
    (r"'mixed \"quotes\"'", 'mixed "quotes"'), ('"it\'s"', "it's"), ("''", ""),
    ("'a, b) or ('", "a, b) or ("),
])
def test_string_literals_and_escapes(literal: str, value: str) -> None:
    assert run(f"x.v == {literal}", x__v=value)


def test_lists_allow_mixed_literals_and_trailing_comma() -> None:
    assert run("x.v in ['a', 1, 2.5, true, null,]", x__v=None)
    assert run("x.v in [ 'a' , 'b' ]", x__v="b")
    assert run("x.v == []", x__v=[])


def test_refs_in_order_and_str_round_trip() -> None:
    text = "len(search.passages) == 0 or (classify.urgent and input.q in loop.items) or search.passages"
    cond = Condition.parse(text)
    assert cond.refs == [Ref("search", "passages"), Ref("classify", "urgent"), Ref("input", "q"),
                         Ref("loop", "items"), Ref("search", "passages")]
    assert str(cond) == text
    assert Condition.parse(text) == cond and hash(Condition.parse(text)) == hash(cond)
    assert repr(cond) == f"Condition(text={text!r})"


def test_names_may_hold_digits_hyphens_and_keywords_as_field() -> None:
    cond = Condition.parse("step-2.out == 1 and 2nd_pass.in_ and a.not")
    assert cond.refs == [Ref("step-2", "out"), Ref("2nd_pass", "in_"), Ref("a", "not")]


# -- syntax errors, each with its column ---------------------------------------------------
@pytest.mark.parametrize("text, column, fragment", [
    ("classify.urgent )", 17, "unexpected ')' at column 17"),
    ("(classify.urgent", 17, "unexpected end of condition at column 17; expected ')'"),
    ("x.v == 'abc", 8, "unterminated string starting at column 8"),
    ('x.v == "abc\\"', 8, "unterminated string starting at column 8"),
    ("x.v == 'a\\nb'", 10, "unknown escape '\\n' at column 10"),
    ("lenn(x.v) > 0", 1, "unknown function 'lenn'; did you mean 'len'?"),
    ("x.v and size(x.v)", 9, "unknown function 'size'; the only function is len()"),
    ("len() == 0", 5, "len() takes exactly one argument"),
    ("len(x.a, x.b) == 0", 8, "len() takes exactly one argument"),
    ("intent == 'a'", 1, "bare name 'intent' at column 1"),
    ("x.a < x.b < x.c", 11, "comparisons do not chain"),
    ("x.a == x.b != x.c", 12, "comparisons do not chain"),
    ("x.a = 1", 5, "use '=='"),
    ("x.a && x.b", 5, "use 'and'"),
    ("!x.a", 1, "use 'not'"),
    ("x.a + 1 > 2", 5, "no arithmetic"),
    ("x.a[0] == 1", 4, "indexing is not supported"),
    ("x.a not x.b", 9, "expected 'in' after 'not'"),
    ("x.a in [x.b]", 9, "list items must be literals"),
    ("x.a in [[1]]", 9, "list items must be literals"),
    ("x.a in ['a' 'b']", 13, "expected ',' or ']'"),
    ("x.a ==", 7, "unexpected end of condition at column 7; expected a value"),
    ("not", 4, "expected a value"),
    ("x.a and", 8, "expected a value"),
    ("x. == 1", 4, "expected a field name after 'x.'"),
    ("x.1 == 1", 3, "expected a field name"),
    ("x.a x.b", 5, "unexpected 'x'"),
    ("x.a in", 7, "expected a value"),
    ("", 1, "empty condition"),
    ("   ", 1, "empty condition"),
    ("x.a @ 1", 5, "unexpected character '@' at column 5"),
    ("true.x", 5, "unexpected '.'"),
    ("x.a == \u00b2", 8, "unexpected character"),
    ("x.a == \u0663", 8, "unexpected character"),
    ("len == 1", 1, "'len' at column 1 is a function"),
])
def test_syntax_errors_name_their_column(text: str, column: int, fragment: str) -> None:
    error = parse_error(text)
    assert error.column == column, str(error)
    assert fragment in str(error)


@pytest.mark.parametrize("text", [
    "__import__('os')",
    "__import__('os').system('ls')",
    "eval('1')",
    "open('/etc/passwd')",
    "a.b.c()",
    "a.b.c == 1",
    "a.b()",
    "input.x.__class__",
    "().__class__.__bases__",
    "lambda: 1",
    "lambda x: x.y",
    "[x for x in y.z]",
    "x.y if a.b else c.d",
    "x.y is None",
    "{'a': 1}",
    "f'{x.y}'",
    "x.y; import os",
    "x.y\n== 1 or __import__",
    "len",
    "len(x.y)(1)",
    "(" * 500 + "x.y" + ")" * 500,
    "not " * 500 + "x.y",
])
def test_junk_and_python_escapes_are_rejected(text: str) -> None:
    parse_error(text)


def test_chain_and_call_errors_point_at_the_extra_part() -> None:
    assert parse_error("a.b.c()").column == 4
    error = parse_error("x.y == 1 or a.b()")
    assert error.column == 16 and "'a.b' is not a function" in str(error)


# -- static checks ---------------------------------------------------------------------------
TYPES = {
    "classify.intent": FieldType(kind="enum", values=("refund_request", "double_charge", "other")),
    "classify.urgent": FieldType(kind="bool"),
    "classify.confidence": FieldType(kind="float"),
    "classify.count": FieldType(kind="int"),
    "search.passages": FieldType(kind="list", item=FieldType(kind="str")),
    "search.tags": FieldType(kind="list", item=FieldType(kind="enum", values=("x", "y"))),
    "input.question": FieldType(kind="str"),
    "input.data": FieldType(kind="json"),
}


def check(text: str) -> list[str]:
    return check_condition(Condition.parse(text), lambda ref: TYPES.get(str(ref)))


@pytest.mark.parametrize("text", [
    "classify.intent in ['refund_request', 'double_charge'] and not classify.urgent",
    "len(search.passages) == 0 or classify.confidence < 0.5",
    "classify.intent == 'other' or 'refund_request' != classify.intent",
    "classify.count >= classify.confidence and classify.count < 3",
    "'x' in search.tags and 'abc' in search.passages and 'why' in input.question",
    "classify.intent in input.question and classify.intent == input.question",
    "input.data == 3 and input.data < 2 and 'k' in input.data and len(input.data) > 0",
    "classify.count == null and classify.urgent and len(classify.intent) > 2",
    "not classify.intent or classify.urgent == true",
    "(classify.count > 1) == classify.urgent",
    "classify.urgent == 1 and classify.count in [true, 2]",
])
def test_well_typed_conditions_have_no_problems(text: str) -> None:
    assert check(text) == []


def test_unknown_references_are_reported_by_the_callers_lookup() -> None:
    assert check("nope.x or classify.urgent and input.other") == [
        "unknown reference 'nope.x'", "unknown reference 'input.other'"]


def test_enum_values_are_checked() -> None:
    assert check("classify.intent == 'refnd'") == [
        "'refnd' is not a value of classify.intent (values: refund_request, double_charge, other)"]
    assert check("'refnd' != classify.intent") == [
        "'refnd' is not a value of classify.intent (values: refund_request, double_charge, other)"]
    problems = check("classify.intent in ['refund_request', 'refnd', 'dbl']")
    assert len(problems) == 2 and "'refnd'" in problems[0] and "'dbl'" in problems[1]
    assert check("classify.intent not in ['refnd']") and check("'z' in search.tags")


def test_numeric_ordering_is_required() -> None:
    problems = check("input.question < 3")
    assert len(problems) == 1 and "'<' needs numbers" in problems[0] and "input.question" in problems[0]
    assert check("classify.count > 'a'") and check("classify.urgent >= 1")
    assert check("search.passages < 2") and check("classify.intent <= 'z'")


def test_len_needs_a_string_or_list() -> None:
    problems = check("len(classify.count) > 0")
    assert len(problems) == 1 and "len() needs a string or a list" in problems[0]
    assert check("len(classify.urgent) > 0") and check("len(3) > 0")


def test_mismatched_equality_and_membership() -> None:
    assert check("classify.count == 'three'")
    assert check("classify.intent == 3")
    assert check("input.question in classify.count")
    assert check("3 in search.passages")
    assert check("classify.count in input.question")
    assert check("classify.count in ['a', 'b']")
    assert check("'a' in null")
