import textwrap

import pytest

import promptc
from promptc.errors import SpecError
from promptc.spec.loader import load_text


def spec(body: str) -> str:
    return textwrap.dedent(body).strip() + "\n"


MATH = spec("""
    version: 1
    name: math
    signatures:
      solve:
        instructions: Solve it.
        inputs:
          question: str
        outputs:
          answer: {type: float, desc: the final number only}
    program:
      - step: solve
        module: chain_of_thought
        signature: solve
""")


def test_example_spec_builds_a_program():
    program = load_text(MATH).program
    assert program.input_names == ["question"]
    assert [f.name for f in program.output_fields] == ["reasoning", "answer"]


def test_unknown_signature_has_location_and_suggestion():
    with pytest.raises(SpecError) as info:
        load_text(MATH.replace("signature: solve", "signature: slove"), file="math.yaml")
    msg = str(info.value)
    assert "math.yaml:13:16: program[0].signature: unknown signature 'slove'; did you mean 'solve'?" in msg


FLOW = spec("""
    version: 1
    signatures:
      search:
        inputs: {question: str}
        outputs: {passages: "list[str]"}
    program:
      - step: search
        signature: search
      - step: answer
        signature: "question, context: str -> answer"
        inputs:
          context: search.passages
""")


def test_type_mismatched_flow_is_caught_at_load():
    with pytest.raises(SpecError) as info:
        load_text(FLOW, file="flow.yaml")
    msg = str(info.value)
    assert "flow.yaml:12:16: program[1].inputs.context: type mismatch" in msg
    assert "list[str]" in msg


def test_flow_that_fits_loads_and_binds_by_name():
    ok = FLOW.replace("context: str", "context: list[str]")
    program = load_text(ok).program
    assert str(program.bindings(program.steps[1].name)["context"]) == "search.passages"
    assert str(program.bindings(program.steps[1].name)["question"]) == "input.question"


@pytest.mark.parametrize("ref,message", [
    ("nowhere.passages", "is read before it can exist"),
    ("search.passage", "has no output 'passage'"),
    ("answer.answer", "own output"),
    ("passages", "expected 'input.FIELD' or 'STEP.FIELD'"),
])
def test_bad_references(ref, message):
    with pytest.raises(SpecError, match=message):
        load_text(FLOW.replace("context: str", "context: list[str]").replace("search.passages", ref))


def test_unknown_lm_name_and_unknown_key():
    with pytest.raises(SpecError, match="unknown LM 'teachr'"):
        load_text(MATH.replace("    signature: solve", "    signature: solve\n    lm: teachr"))
    with pytest.raises(SpecError, match="unknown key 'modle'; did you mean 'model'"):
        load_text(MATH.replace("name: math", "name: math\nlm:\n  modle: x"))


def test_enum_needs_values():
    bad = MATH.replace("answer: {type: float, desc: the final number only}", "answer: {type: enum}")
    with pytest.raises(SpecError, match="enum needs"):
        load_text(bad)


def test_python_api_runs_offline(tmp_path):
    path = tmp_path / "math.yaml"
    path.write_text(MATH)
    program = promptc.load_spec(path)
    prediction = program(question="Sam has 3 apples and gets 4 more. How many?")
    assert isinstance(prediction.answer, float)
    assert prediction.trace.steps[0].step == "solve"
    assert prediction.usage.calls == 1


def test_lm_overrides_apply_to_default():
    loaded = load_text(MATH, options=promptc.spec.lms.LMOptions(model="gpt-x", base_url="http://h/v1"))
    cfg = loaded.lm_configs["default"]
    assert (cfg.model, cfg.base_url, cfg.resolved_provider) == ("gpt-x", "http://h/v1", "openai")
