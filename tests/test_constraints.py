"""Run-time constraints (assert / suggest): each check, config validation, python checks, feedback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from promptc.core import constraints as rt
from promptc.core.constraints import (
    Constraint,
    ConstraintSet,
    Violation,
    check_contains_citation,
    check_max_words,
    passage_count,
)
from promptc.spec.constraints import build_constraint, build_constraints, parse_constraint


def make(hard: bool = True, **cfg) -> Constraint:
    return build_constraint(parse_constraint(cfg), default_field="answer", hard=hard)


def run(c: Constraint, value, **inputs) -> Violation | None:
    return c.check({"answer": value}, inputs)


# -- every built-in check: passing and failing, with the detail -------------------------
@pytest.mark.parametrize("cfg, good, bad, detail", [
    ({"check": "max_words", "limit": 3}, "one two three", "one two three four", "4 words"),
    ({"check": "max_words", "limit": 2}, ["a", "b"], ["a b", "c"], "3 words"),  # lists as text
    ({"check": "min_words", "limit": 2}, "one two", "one", "1 word"),
    ({"check": "min_words", "limit": 3}, "a b c", "", "0 words"),
    ({"check": "max_chars", "limit": 5}, "hello", "hello!", "6 characters"),
    ({"check": "regex", "pattern": "^[A-Z]"}, "Paris", "paris", "no match in 'paris'"),
    ({"check": "regex", "pattern": "^paris$", "ignore_case": True}, "PARIS", "Paris!", "no match"),
    ({"check": "one_of", "values": ["yes", "no"]}, " yes ", "Yes", "got 'Yes'"),
    ({"check": "one_of", "values": ["yes", "no"], "ignore_case": True}, "YES", "maybe", "got 'maybe'"),
    ({"check": "one_of", "values": [1, 2]}, 2, 3, "got '3'"),  # YAML numbers compare as text
    ({"check": "json_schema", "schema": {"type": "object", "required": ["a"]}},
     {"a": 1}, {"b": 1}, "missing required property 'a'"),
    ({"check": "json_schema", "schema": {"type": "object", "required": ["a"]}},
     '```json\n{"a": 1}\n```', "not json", "expected object, got string"),
    ({"check": "json_schema", "schema": {"type": "string", "maxLength": 3}}, "abc", "abcd", "longer than 3"),
    ({"check": "not_empty"}, "x", "   ", "empty"),
    ({"check": "not_empty"}, 0, None, "null"),
    ({"check": "not_empty"}, False, [], "empty"),
    ({"check": "not_empty"}, [0], {}, "empty"),
    ({"check": "contains_citation"}, "Paris [1].", "Paris.", "no citation"),
])
def test_builtin_checks(cfg, good, bad, detail):
    c = make(**cfg)
    assert run(c, good) is None
    v = run(c, bad)
    assert v is not None and detail in v.detail
    assert v.field == "answer" and v.hard and v.constraint.startswith(cfg["check"] + "(answer")


def test_readable_names_and_explicit_field():
    assert make(check="max_words", limit=60).name == "max_words(answer, 60)"
    assert make(check="regex", pattern="^[A-Z]").name == "regex(answer, '^[A-Z]')"
    assert make(check="not_empty", field="title").name == "not_empty(title)"
    c = make(check="not_empty", field="title")
    assert c.check({"title": "T", "answer": ""}, {}) is None


def test_missing_field_is_a_violation():
    v = make(check="max_words", limit=5).check({"other": "x"}, {})
    assert v is not None and v.detail == "no field `answer`"


@pytest.mark.parametrize("cfg, message", [
    ({"check": "max_words", "limit": 60}, "`answer` must have at most 60 words."),
    ({"check": "min_words", "limit": 2}, "`answer` must have at least 2 words."),
    ({"check": "max_chars", "limit": 9}, "`answer` must have at most 9 characters."),
    ({"check": "regex", "pattern": "^A"}, "`answer` must match the regular expression '^A'."),
    ({"check": "one_of", "values": ["a", "b"]}, "`answer` must be one of: a, b."),
    ({"check": "json_schema", "schema": {"type": "integer"}},
     '`answer` must be JSON matching this schema: {"type": "integer"}'),
    ({"check": "not_empty"}, "`answer` must not be empty."),
    ({"check": "contains_citation"}, "`answer` must cite the passages it uses by number, like [1]."),
])
def test_default_messages(cfg, message):
    assert make(**cfg).message == message
    assert make(**cfg, message="Custom.").message == "Custom."


# -- config validation -----------------------------------------------------------------
@pytest.mark.parametrize("cfg, error", [
    ({}, "exactly one of 'check'"),
    ({"check": "not_empty", "python": "m:f"}, "exactly one of 'check'"),
    ({"check": "regex"}, "check 'regex' needs 'pattern'"),
    ({"check": "regex", "pattern": "(unclosed"}, "invalid regex"),
    ({"check": "contains_citation", "citation_pattern": "[1"}, "invalid regex"),
    ({"check": "one_of"}, "check 'one_of' needs 'values'"),
    ({"check": "one_of", "values": []}, "check 'one_of' needs 'values'"),
    ({"check": "json_schema"}, "check 'json_schema' needs 'schema'"),
    ({"check": "max_words"}, "check 'max_words' needs 'limit'"),
    ({"check": "max_chars", "limit": -1}, "greater than or equal to 0"),
    ({"check": "not_empty", "limit": 3}, "option 'limit' does not apply to check 'not_empty'"),
    ({"check": "max_words", "limit": 3, "schema": {}}, "option 'schema' does not apply"),
    ({"python": "m:f", "pattern": "x"}, "option 'pattern' does not apply to check 'python'"),
    ({"python": "not a path"}, "must be spelled 'module.path:function'"),
    ({"check": "no_such_check"}, "expected one of max_words, max_chars, min_words, regex"),
    ({"check": "not_empy"}, "did you mean 'not_empty'"),
    ({"check": "not_empty", "limt": 3}, "Extra inputs are not permitted"),
    ({"check": "not_empty", "message": "  "}, "message cannot be empty"),
])
def test_config_errors(cfg, error):
    with pytest.raises(ValueError, match=error):
        parse_constraint(cfg)


def test_unknown_output_field_is_reported_at_build():
    with pytest.raises(ValueError, match="constraint field 'anser' is not an output"):
        build_constraint({"check": "not_empty", "field": "anser"}, default_field="answer",
                         hard=True, output_names=["reasoning", "answer"])


# -- python checks ---------------------------------------------------------------------
@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_checks.py").write_text(textwrap.dedent("""
        def no_hedging(outputs, inputs):
            return "maybe" not in outputs["answer"].lower()

        def with_detail(outputs, inputs):
            n = outputs["answer"].count("!")
            return n == 0, f"{n} exclamation marks"

        def one_arg(value):
            return value.endswith(".")

        def one_required(value, strict=False):
            return value.endswith(".")

        def broken(outputs, inputs):
            raise ValueError("boom")

        def returns_none(outputs, inputs):
            pass

        def uses_inputs(outputs, inputs):
            return inputs["question"].split()[0] in outputs["answer"]

        def three(a, b, c):
            return True

        async def is_async(outputs, inputs):
            return True

        NOT_CALLABLE = 3
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_checks"


def test_python_check_returning_bool(checks_module):
    c = make(python=f"{checks_module}:no_hedging", message="Don't hedge.", hard=False)
    assert run(c, "It is Paris.") is None
    v = run(c, "Maybe Paris.")
    assert v is not None and v.detail == "check returned False" and not v.hard
    assert v.message == "Don't hedge." and v.constraint == "no_hedging(answer)"


def test_python_check_returning_tuple(checks_module):
    c = make(python=f"{checks_module}:with_detail")
    assert run(c, "Paris.") is None
    assert run(c, "Paris!!").detail == "2 exclamation marks"


@pytest.mark.parametrize("func", ["one_arg", "one_required"])
def test_python_check_taking_the_value(checks_module, func):
    c = make(python=f"{checks_module}:{func}", field="answer")
    assert run(c, "Paris.") is None
    assert run(c, "Paris") is not None
    # The value is read from the field, so a missing field is a violation, not a KeyError.
    assert c.check({}, {}).detail == "no field `answer`"


def test_python_check_sees_inputs(checks_module):
    c = make(python=f"{checks_module}:uses_inputs")
    assert run(c, "Paris is the capital", question="Paris or Lyon?") is None
    assert run(c, "It is Paris", question="Capital of France?") is not None


def test_a_raising_check_is_a_violation_not_a_crash(checks_module):
    v = run(make(python=f"{checks_module}:broken"), "x")
    assert v is not None and v.detail == "raised ValueError: boom"


def test_a_check_returning_junk_is_a_violation(checks_module):
    v = run(make(python=f"{checks_module}:returns_none"), "x")
    assert v is not None and "returned NoneType" in v.detail


def test_default_message_of_python_check(checks_module):
    assert make(python=f"{checks_module}:no_hedging").message == \
        "`answer` must pass the check no_hedging."


@pytest.mark.parametrize("func, error", [
    ("three", "must take \\(value\\) or \\(outputs, inputs\\)"),
    ("is_async", "is async"),
    ("NOT_CALLABLE", "is not callable"),
    ("missing", "has no attribute"),
])
def test_bad_python_checks_fail_at_build(checks_module, func, error):
    with pytest.raises(ValueError, match=error):
        make(python=f"{checks_module}:{func}")


def test_unimportable_module_says_check_not_metric():
    with pytest.raises(ValueError, match="cannot import check 'no_such_module_xyz:f'"):
        make(python="no_such_module_xyz:f")


# -- citations ----------------------------------------------------------------------------
def test_citations_within_the_context_list():
    c = make(check="contains_citation")
    assert run(c, "Paris [1] and Lyon [2].", context=["a", "b"]) is None
    v = run(c, "Paris [1], Lyon [3] and [0].", context=["a", "b"])
    assert v is not None and v.detail == "cites [0], [3] but there are 2 passages"
    assert run(c, "Paris [2].", passages=["only"]).detail == "cites [2] but there is 1 passage"
    assert run(c, "Paris [7].", context="not a list") is None  # no list: only presence is checked


def test_custom_citation_pattern_and_multi_number_citations():
    c = make(check="contains_citation", citation_pattern=r"\[[\d, ]+\]")
    assert run(c, "Paris [1, 2].", context=["a", "b"]) is None
    assert run(c, "Paris [1, 5].", context=["a", "b"]).detail == "cites [5] but there are 2 passages"


def test_citation_helpers_are_pure():
    import re

    assert check_contains_citation("see [3]", re.compile(r"\[\d+\]"), passages=None) is None
    assert passage_count({"passages": ("a", "b", "c")}) == 3
    assert passage_count({"question": "q"}) is None
    assert check_max_words("a b", 1) == "2 words"


# -- sets: hard vs soft, retries, feedback --------------------------------------------------
def test_set_separates_hard_and_soft():
    cs = build_constraints(
        [{"check": "not_empty"}, {"check": "max_words", "limit": 3}],
        [parse_constraint({"check": "contains_citation", "message": "Cite a passage like [1]."})],
        default_field="answer", max_retries=1)
    assert [c.hard for c in cs.hard] == [True, True] and [c.hard for c in cs.soft] == [False]
    assert cs.max_retries == 1 and not cs.is_empty
    violations = cs.check_all({"answer": "one two three four"}, {"context": ["p"]})
    assert [(v.constraint, v.hard) for v in violations] == [
        ("max_words(answer, 3)", True), ("contains_citation(answer)", False)]
    assert cs.check_all({"answer": "Yes [1]."}, {"context": ["p"]}) == []


def test_set_errors_name_the_entry():
    with pytest.raises(ValueError, match=r"suggest\[1\]: .*needs 'pattern'"):
        build_constraints([], [{"check": "not_empty"}, {"check": "regex"}], default_field="answer")
    with pytest.raises(ValueError, match="max_retries"):
        ConstraintSet(max_retries=-1)
    assert ConstraintSet().is_empty


def test_feedback_lists_past_outputs_and_instructions():
    cs = build_constraints(
        [{"check": "max_words", "limit": 3, "message": "Keep it under 3 words."}],
        [{"check": "contains_citation", "message": "Cite a passage like [1]."}],
        default_field="answer")
    previous = {"reasoning": "Because.", "answer": "It is surely Paris", "tags": ["a", "b"]}
    violations = cs.check_all(previous, {})
    text = cs.feedback(violations + violations[:1], previous)
    assert "Past reasoning: Because." in text
    assert "Past answer: It is surely Paris" in text
    assert 'Past tags: ["a", "b"]' in text
    assert "Instructions:" in text
    assert "- Keep it under 3 words. (found: 4 words)" in text
    assert "- Cite a passage like [1]. (found: no citation)" in text
    assert text.count("Keep it under 3 words.") == 1  # repeated violations are listed once
    assert text.index("Past answer") < text.index("Instructions:")


def test_violation_str_is_a_one_line_summary():
    v = run(make(check="max_words", limit=1, message="Short!"), "a b")
    assert str(v) == "max_words(answer, 1): Short! (2 words)"


def test_core_builds_constraints_from_plain_values():
    import re

    c = rt.length("max_words", "answer", 2, hard=True)
    assert c.name == "max_words(answer, 2)" and c.check({"answer": "a b c"}, {}).detail == "3 words"
    c = rt.regex("answer", re.compile("^p", re.IGNORECASE), hard=False, message="Start with P.")
    assert c.check({"answer": "Paris"}, {}) is None and c.message == "Start with P."
    assert rt.one_of("label", ["a", "b"], hard=True).check({"label": "c"}, {}).detail == "got 'c'"
    assert rt.not_empty("answer", hard=True).check({"answer": " "}, {}).detail == "empty"


def test_core_constraints_import_neither_spec_nor_metrics():
    import re

    import promptc.core

    for name in ("constraints.py", "variants.py", "condition_check.py", "conditions.py"):
        f = Path(promptc.core.__file__).parent / name
        imports = re.findall(r"^\s*(?:from|import) (promptc\.\w+)", f.read_text(), re.MULTILINE)
        assert not {"promptc.spec", "promptc.metrics"} & set(imports), f.name
