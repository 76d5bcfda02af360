"""Spec source handling: YAML with positions, interpolation, located validation errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptc.errors import Location, SpecError
from promptc.spec.models import SpecDocument
from promptc.spec.source import (
    PositionMap,
    format_path,
    interpolate,
    load_yaml,
    load_yaml_text,
)
from promptc.spec.validate import did_you_mean, load_document, validate_document

EXAMPLE = """\
version: 1
name: math
lm:
  model: gpt-4o-mini
  base_url: ${OPENAI_BASE_URL:-}
  api_key_env: OPENAI_API_KEY
  temperature: 0
  max_tokens: 1024
signatures:
  solve:
    instructions: Solve the grade-school math word problem.
    inputs:
      question: str
    outputs:
      answer: {type: float, desc: the final number only}
program:
  - step: solve
    module: chain_of_thought
    signature: solve
data:
  train: datasets/math/train.jsonl
"""


def write(tmp_path: Path, text: str | bytes, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, env: dict[str, str] | None = None) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_document(path, env or {})
    return info.value


def only(err: SpecError) -> tuple[Location, str]:
    assert len(err.problems) == 1, str(err)
    return err.problems[0]


def replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


# --- loading and positions ---------------------------------------------------------------


def test_example_loads(tmp_path: Path) -> None:
    doc, _ = load_document(write(tmp_path, EXAMPLE), {})
    assert isinstance(doc, SpecDocument)
    assert doc.lm is not None and doc.lm.model == "gpt-4o-mini" and doc.lm.base_url == ""
    assert doc.program[0].module == "chain_of_thought"
    answer = doc.signatures["solve"].outputs["answer"]
    assert not isinstance(answer, str) and answer.type == "float"
    assert doc.data is not None and doc.data.train == "datasets/math/train.jsonl"


def test_positions_are_exact(tmp_path: Path) -> None:
    data, pos = load_yaml(write(tmp_path, EXAMPLE))
    assert data["lm"]["max_tokens"] == 1024
    assert pos.get(("name",)) == (2, 7)
    assert pos.get(("lm", "model")) == (4, 10)
    assert pos.get(("lm", "model"), key=True) == (4, 3)
    assert pos.get(("program", 0)) == (17, 5)
    assert pos.get(("program", 0, "signature")) == (19, 16)
    assert pos.get(("signatures", "solve", "outputs", "answer", "desc")) == (15, 35)
    assert pos.get(("signatures", "solve", "outputs", "answer"), key=True) == (15, 7)


def test_locate_falls_back_to_ancestor_and_formats_path() -> None:
    _, pos = load_yaml_text(EXAMPLE, "specs/math.yaml")
    loc = pos.locate(("program", 0, "lm"))
    assert (loc.file, loc.line, loc.column, loc.path) == ("specs/math.yaml", 17, 5, "program[0].lm")
    assert pos.locate(("nope", "deeper")).line == 1
    assert pos.locate(("lm", "model"), key=True, file="other.yaml").file == "other.yaml"
    assert str(pos.locate(("lm", "model"))) == "specs/math.yaml:4:10"


def test_format_path() -> None:
    assert format_path(("program", 0, "signature")) == "program[0].signature"
    assert format_path(("signatures", "solve", "outputs", "answer")) == (
        "signatures.solve.outputs.answer")
    assert format_path(()) == ""
    assert format_path(("prices", "gpt-4.1")) == "prices['gpt-4.1']"


def test_position_map_without_positions() -> None:
    loc = PositionMap("x.yaml").locate(("a", 1))
    assert (loc.file, loc.line, loc.column, loc.path) == ("x.yaml", None, None, "a[1]")


def test_dates_stay_strings_and_anchors_merge() -> None:
    text = "base: &b {model: m, temperature: 1}\nlm:\n  <<: *b\n  model: other\nwhen: 2024-01-01\n"
    data, pos = load_yaml_text(text)
    assert data["when"] == "2024-01-01"
    assert data["lm"] == {"model": "other", "temperature": 1}
    assert pos.get(("lm", "model")) == (4, 10)


def test_bom_is_ignored(tmp_path: Path) -> None:
    data, _ = load_yaml(write(tmp_path, "\ufeffname: x\n".encode()))
    assert data == {"name": "x"}


# --- malformed files ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [
        ("lm:\n  model: x\n temperature: 0\n", 3, 2, "indentation"),
        ("name: a\n  b: 2\n", 2, 4, "mapping values are not allowed here"),
        ("name: x\nprogram: [a, b\ndata: {}\n", 3, 5, "while parsing a flow sequence started at line 2"),
        ("lm:\n\tmodel: x\n", 2, 1, "tabs"),
        ("name: 'abc\n", 2, 1, "while scanning a quoted scalar"),
        ("name: *nope\n", 1, 7, "undefined alias"),
        ("a: 1\n---\nb: 2\n", 2, 1, "another document"),
    ],
)
def test_yaml_syntax_errors_are_located(tmp_path: Path, text: str, line: int, column: int,
                                        fragment: str) -> None:
    loc, msg = only(load_error(write(tmp_path, text)))
    assert (loc.line, loc.column) == (line, column)
    assert fragment in msg
    assert "\n" not in msg and "Traceback" not in msg


def test_duplicate_key(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "  temperature: 0\n", "  temperature: 0\n  model: other\n")
    err = load_error(write(tmp_path, text))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (8, 3, "lm.model")
    assert "duplicate key 'model'" in msg
    assert str(err).startswith(f"{tmp_path / 'spec.yaml'}:8:3: lm.model: duplicate key")


@pytest.mark.parametrize("text", ["", "   \n\n", "# just a comment\n  # another\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    loc, msg = only(load_error(write(tmp_path, text)))
    assert msg == "spec file is empty"
    assert (loc.line, loc.column) == (1, 1)


def test_non_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"name: ok\ndescription: caf\xe9 au lait\n")
    loc, msg = only(load_error(path))
    assert (loc.file, loc.line, loc.column) == (str(path), 2, 17)
    assert "UTF-8" in msg and "0xe9" in msg


def test_python_tags_are_refused(tmp_path: Path) -> None:
    text = "name: !!python/object/apply:os.system ['echo pwned']\nprogram: []\n"
    err = load_error(write(tmp_path, text))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (1, 7, "name")
    assert "'!!python/object/apply:os.system' is not allowed" in msg
    assert "\n" not in str(err)


def test_custom_tag_refused() -> None:
    with pytest.raises(SpecError, match=r"<string>:1:4: a: YAML tag '!env' is not allowed"):
        load_yaml_text("a: !env HOME\n")


def test_root_must_be_a_mapping() -> None:
    with pytest.raises(SpecError, match="top level of a spec must be a mapping.*got a list"):
        load_yaml_text("- a\n- b\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_yaml(tmp_path / "nope.yaml")


def test_billion_laughs_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(SpecError, match="too many nodes"):
        load_yaml_text("\n".join(lines) + "\n")


# --- interpolation -----------------------------------------------------------------------


def test_interpolation_set_unset_default_escape() -> None:
    text = (
        "a: ${HOME_DIR}/x\n"
        "b: ${MISSING:-fallback}\n"
        "c: ${MISSING:-}\n"
        "d: $${NOT_A_VAR} and $$ and $5\n"
        "e: ['${PORT}']\n"
        "f: ${EMPTY:-dflt}\n"
        "g: 7\n"
    )
    data, pos = load_yaml_text(text)
    env = {"HOME_DIR": "/home/u", "PORT": "8080", "EMPTY": ""}
    out = interpolate(data, pos, env, "s.yaml")
    assert out == {"a": "/home/u/x", "b": "fallback", "c": "", "d": "${NOT_A_VAR} and $$ and $5",
                   "e": ["8080"], "f": "dflt", "g": 7}
    assert isinstance(out["e"][0], str)  # no type guessing
    assert data["a"] == "${HOME_DIR}/x"  # input not mutated


def test_interpolation_unset_variable_is_located() -> None:
    data, pos = load_yaml_text(EXAMPLE.replace("${OPENAI_BASE_URL:-}", "${OPENAI_BASE_URL}"))
    with pytest.raises(SpecError) as info:
        interpolate(data, pos, {}, "specs/math.yaml")
    loc, msg = only(info.value)
    assert (loc.file, loc.line, loc.column, loc.path) == ("specs/math.yaml", 5, 13, "lm.base_url")
    assert msg == ("environment variable OPENAI_BASE_URL is not set "
                   "(use ${OPENAI_BASE_URL:-default} for a default)")


def test_interpolation_malformed_reference() -> None:
    data, pos = load_yaml_text("a: ${1BAD}\nb: ${OPEN\n")
    with pytest.raises(SpecError) as info:
        interpolate(data, pos, {}, "s.yaml")
    assert [loc.path for loc, _ in info.value.problems] == ["a", "b"]
    assert "malformed reference" in info.value.problems[0][1]
    assert "unterminated" in info.value.problems[1][1]


# --- schema validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "column", "path", "message"),
    [
        ("name: math\n", "nmae: math\n", 2, 1, "nmae", "unknown key 'nmae'; did you mean 'name'?"),
        ("  model: gpt", "  modle: gpt", 4, 3, "lm.modle", "unknown key 'modle'; did you mean 'model'?"),
        ("data:\n", "  - step: check\n    signatre: solve\ndata:\n", 21, 5, "program[1].signatre",
         "unknown key 'signatre'; did you mean 'signature'?"),
        ("desc: the final", "dsc: the final", 15, 29, "signatures.solve.outputs.answer.dsc",
         "unknown key 'dsc'; did you mean 'desc'?"),
        ("data:\n", "zzz: 1\ndata:\n", 20, 1, "zzz", "unknown key 'zzz' (allowed keys: version, "),
    ],
)
def test_unknown_keys(tmp_path: Path, old: str, new: str, line: int, column: int, path: str,
                      message: str) -> None:
    err = load_error(write(tmp_path, replace(EXAMPLE, old, new)))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (line, column, path)
    assert msg.startswith(message)
    assert f"spec.yaml:{line}:{column}: {path}: unknown key" in str(err)


def test_wrong_type_for_temperature(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, replace(EXAMPLE, "temperature: 0", "temperature: abc")))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (7, 16, "lm.temperature")
    assert msg == "expected a number, got 'abc'"


def test_temperature_out_of_range(tmp_path: Path) -> None:
    _, msg = only(load_error(write(tmp_path, replace(EXAMPLE, "temperature: 0", "temperature: 3"))))
    assert msg == "must be at most 2, got 3"


def test_invalid_module_literal(tmp_path: Path) -> None:
    err = load_error(write(tmp_path, replace(EXAMPLE, "module: chain_of_thought", "module: cot")))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (18, 13, "program[0].module")
    assert msg.startswith("expected one of predict, chain_of_thought, retrieve, react,")
    assert msg.endswith(", got 'cot'; did you mean 'chain_of_thought'?")
    assert str(err).startswith(f"{tmp_path / 'spec.yaml'}:18:13: program[0].module: expected one of ")


def test_missing_required_field(tmp_path: Path) -> None:
    loc, msg = only(load_error(write(tmp_path, replace(EXAMPLE, "    signature: solve\n", ""))))
    assert (loc.line, loc.column, loc.path) == (17, 5, "program[0]")
    assert msg == "missing required key 'signature'"


def test_union_field_reported_once(tmp_path: Path) -> None:
    loc, msg = only(load_error(write(tmp_path, replace(EXAMPLE, "question: str", "question: 5"))))
    assert loc.path == "signatures.solve.inputs.question"
    assert (loc.line, loc.column) == (13, 17)
    assert msg.startswith("expected a string or a mapping (type, desc, values, schema), got 5")


def test_union_mapping_branch_reports_only_inner_problem(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "{type: float, desc:", "{type: [float], desc:")
    loc, msg = only(load_error(write(tmp_path, text)))
    assert loc.path == "signatures.solve.outputs.answer.type"
    assert (loc.line, loc.column) == (15, 22)
    assert msg == "expected a string, got a list"


def test_all_problems_reported_sorted(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "module: chain_of_thought", "module: cot")
    text = replace(text, "name: math", "name: 123")
    text = replace(text, "  model: gpt", "  modle: gpt")
    err = load_error(write(tmp_path, text))
    assert [loc.line for loc, _ in err.problems] == [2, 4, 18]
    assert "quote it" in err.problems[0][1]
    assert len(str(err).splitlines()) == 3


def test_empty_program_and_empty_values(tmp_path: Path) -> None:
    text = "signatures:\nprogram: []\n"
    err = load_error(write(tmp_path, text))
    msgs = {loc.path: msg for loc, msg in err.problems}
    assert msgs == {"signatures": "expected a mapping, got an empty value",
                    "program": "must have at least 1 item, got 0"}


def test_value_error_prefix_stripped(tmp_path: Path) -> None:
    _, msg = only(load_error(write(tmp_path, replace(EXAMPLE, "step: solve", "step: input"))))
    assert msg.startswith("invalid step name 'input'")


def test_non_string_dict_key(tmp_path: Path) -> None:
    text = EXAMPLE + "prices:\n  1: {input: 1, output: 2}\n"
    loc, msg = only(load_error(write(tmp_path, text)))
    assert (loc.line, loc.column) == (23, 3)
    assert msg == "every key here must be a string, got 1"


def test_validate_document_direct() -> None:
    data, pos = load_yaml_text("program: [{step: a, signature: 'q -> a'}]\n", "x.yaml")
    doc = validate_document(data, pos, "x.yaml")
    assert doc.program[0].signature == "q -> a"
    with pytest.raises(SpecError, match=r"^x.yaml:1:1: expected a mapping"):
        validate_document([1], pos, "x.yaml")


def test_did_you_mean() -> None:
    assert did_you_mean("modle", ["model", "name"]) == "model"
    assert did_you_mean("cot", ["predict", "chain_of_thought"]) == "chain_of_thought"
    assert did_you_mean("Model", ["model"]) == "model"
    assert did_you_mean("xyz", ["model"]) is None


def test_control_character_is_located() -> None:
    with pytest.raises(SpecError, match=r"^<string>:2:5: unacceptable character #x0007"):
        load_yaml_text("a: ok\nb: x\x07y\n")


def test_bad_explicit_scalar_tag() -> None:
    with pytest.raises(SpecError, match=r"^<string>:1:4: a: cannot read 'abc' as !!int"):
        load_yaml_text("a: !!int abc\n")


# --- discriminated unions: steps by `module`, metrics by `type`, checks by `check` ------------


def test_option_of_another_module_is_located_at_its_key(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "    signature: solve\n", "    signature: solve\n    n: 3\n")
    err = load_error(write(tmp_path, text))
    loc, msg = only(err)
    assert (loc.line, loc.column, loc.path) == (20, 5, "program[0].n")
    assert msg == "option 'n' does not apply to module 'chain_of_thought' (it is for best_of_n, refine)"
    assert "spec.yaml:20:5: program[0].n: option 'n'" in str(err)


def test_missing_option_of_a_module_names_the_module(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "module: chain_of_thought", "module: refine")
    loc, msg = only(load_error(write(tmp_path, text)))
    assert (loc.line, loc.column, loc.path) == (17, 5, "program[0]")
    assert msg.startswith("module 'refine' needs 'reward' (a metric")


def test_nested_union_errors_strip_every_tag(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "module: chain_of_thought",
                   "module: best_of_n\n    reward: {type: exact_match, limit: 3}\n"
                   "    assert: [{check: regex, pattern: x, values: [a]}]")
    err = load_error(write(tmp_path, text))
    assert [(p.path, m) for p, m in err.problems] == [
        ("program[0].reward.limit",
         "option 'limit' does not apply to metric type 'exact_match' (it is for max_words, "
         "max_chars, min_words)"),
        ("program[0].assert[0].values",
         "option 'values' does not apply to check 'regex' (it is for one_of)"),
    ]


def test_module_left_out_is_predict_and_round_trips(tmp_path: Path) -> None:
    text = replace(EXAMPLE, "    module: chain_of_thought\n", "")
    doc, _ = load_document(write(tmp_path, text), {})
    step = doc.program[0]
    assert step.module == "predict"
    dumped = doc.model_dump(mode="json", by_alias=True, exclude_unset=True)
    assert "module" not in dumped["program"][0]
    assert SpecDocument.model_validate(dumped) == doc


def test_metric_union_problems_are_one_message(tmp_path: Path) -> None:
    text = EXAMPLE + "metric: [{type: exact_match}, {type: exact_match, python: m:f}]\n"
    loc, msg = only(load_error(write(tmp_path, text)))
    assert loc.path == "metric[1]"
    assert msg.startswith("a metric needs exactly one of 'type'")
