"""Export formats: every template, filled in, reproduces exactly what promptc sends."""

from __future__ import annotations

import json
import re

import jinja2
import pytest

from promptc.artifacts.compiled import write_compiled
from promptc.artifacts.export import FORMATS, export_artifact, export_report, load_traces
from promptc.artifacts.program_file import ProgramArtifact
from promptc.core.adapter import ChatAdapter, format_value
from promptc.core.trace import Trace, TraceStep
from promptc.errors import InputError, UsageError
from promptc.spec.loader import load_text

SPEC = """
version: 1
name: export_demo
lms:
  default: {model: offline}
  big: {model: gpt-4o-mini}
signatures:
  classify:
    instructions: |
      Classify the message {like this}.
      Literal {{ jinja }} and {% tags %} must survive.
    inputs: {message: str}
    outputs:
      intent: {type: enum, values: [card_lost, refund_request, other]}
program:
  - step: classify
    signature: classify
  - step: answer
    module: chain_of_thought
    signature: "message, passages: list[str] -> answer: str, escalate: bool"
    lm: big
    instructions: Answer from the passages.
  - step: extract
    signature: "answer: str, intent: str -> fields: json, score: float"
    json_mode: true
"""

CLASSIFY_DEMOS = [
    {"message": 'Card gone {"a": 1} — déjà vu 🚀', "intent": "card_lost"},
    {"message": "Template {{x}} {% if y %} {# c #} {", "intent": "other"},
    {"message": "Windows line\r\nends and a trailing newline\n", "intent": "refund_request"},
]
ANSWER_DEMOS = [
    {"message": "Where is {it}?", "passages": ["{{a}}", "ü {b}"], "reasoning": "Think {x}.",
     "answer": "Here {{}}", "escalate": False},
]
EXTRACT_DEMOS = [{"answer": "done", "intent": "other", "fields": {"k": "{v}", "n": [1, 2]}, "score": 0.5}]

INPUTS = {
    "classify": [
        {"message": "plain"},
        {"message": 'braces {"a": 1} {{x}} {% raw %} {#c#} } {'},
        {"message": "{message} and {0} and {} and {{message}}"},
        {"message": "  spaces, unicode é 😀, \r\n crlf and \\n, trailing\n"},
        {"message": ""},
    ],
    "answer": [
        {"message": "q", "passages": ["one", "two {x}", "{{y}}"]},
        {"message": "{passages}", "passages": []},
        {"message": "multi\nline", "passages": ["«quoted»", "a\nb", "{% endraw %}"]},
    ],
    "extract": [
        {"answer": "It is {done}", "intent": "card_lost"},
        {"answer": '{"json": true}', "intent": "{{intent}}"},
    ],
}


def make_artifact() -> ProgramArtifact:
    loaded = load_text(SPEC, lms={})
    program = loaded.program
    program.predictor("classify").demos = CLASSIFY_DEMOS
    program.predictor("answer").demos = ANSWER_DEMOS
    program.predictor("extract").demos = EXTRACT_DEMOS
    return ProgramArtifact.from_program(program, lm_configs=loaded.lm_configs)


@pytest.fixture
def artifact() -> ProgramArtifact:
    return make_artifact()


def modules(artifact):
    """The predictors promptc would run, by name (one per step here)."""
    return dict(artifact.build({}).named_predictors())


def formatted(artifact, step, inputs):
    sig = next(s.signature for s in artifact.steps if s.name == step)
    return {name: format_value(value, sig.input(name).type) for name, value in inputs.items()}


def expected(artifact, step, inputs):
    return [(m.role, m.content) for m in modules(artifact)[step].render(inputs)]


def cases():
    return [(step, inputs) for step, rows in INPUTS.items() for inputs in rows]


def test_openai_messages_reproduce_promptc_exactly(artifact, tmp_path):
    export_artifact(artifact, "openai-messages", tmp_path)
    for step, inputs in cases():
        doc = json.loads((tmp_path / f"{step}.json").read_text(encoding="utf-8"))
        values = formatted(artifact, step, inputs)
        got = [(m["role"], m["content"].format(**values)) for m in doc["messages"]]
        assert got == expected(artifact, step, inputs), (step, inputs)


def test_openai_messages_file_layout(artifact, tmp_path):
    export_artifact(artifact, "openai-messages", tmp_path)
    classify = json.loads((tmp_path / "classify.json").read_text(encoding="utf-8"))
    answer = json.loads((tmp_path / "answer.json").read_text(encoding="utf-8"))
    extract = json.loads((tmp_path / "extract.json").read_text(encoding="utf-8"))
    assert classify["model"] == "offline" and answer["model"] == "gpt-4o-mini"
    assert [f["name"] for f in answer["inputs"]] == ["message", "passages"]
    assert answer["inputs"][1]["type"] == "list[str]"
    assert answer["inputs"][0]["source"] == "input.message"
    assert extract["inputs"][1]["source"] == "classify.intent"
    assert [f["name"] for f in answer["outputs"]] == ["reasoning", "answer", "escalate"]
    assert classify["outputs"][0]["schema"]["enum"] == ["card_lost", "refund_request", "other"]
    # system, one user/assistant pair per demo, the final user turn
    assert [m["role"] for m in classify["messages"]] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert classify["response_format"] is None and answer["response_format"] is None
    sig = modules(artifact)["extract"].signature
    assert extract["response_format"] == ChatAdapter().response_format(sig)
    assert "format_value" in classify["value_format"]
    assert "{message}" in classify["messages"][-1]["content"]
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert ".format(**values)" in readme and "doubled" in readme


def test_readme_format_value_matches_promptc(artifact, tmp_path):
    """The standalone format_value printed in the README behaves like promptc's."""
    export_artifact(artifact, "openai-messages", tmp_path)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(import json\n\ndef format_value.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    types = {f.name: f.type for s in artifact.steps for f in s.signature.inputs}
    samples = [("message", "x {y}"), ("passages", ["a", "b"]), ("passages", []), ("message", True),
               ("message", 3.5), ("message", {"k": ["é"]}), ("message", ["not", "a list type"])]
    for name, value in samples:
        assert namespace["format_value"](value, types[name].kind == "list") == format_value(value, types[name])


def test_jinja_templates_reproduce_promptc_exactly(artifact, tmp_path):
    files = export_artifact(artifact, "jinja", tmp_path)
    assert {p.name for p in files} >= {"classify.jinja", "classify.messages.json", "README.md"}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for step, inputs in cases():
        values = formatted(artifact, step, inputs)
        doc = json.loads((tmp_path / f"{step}.messages.json").read_text(encoding="utf-8"))
        per_message = [(m["role"], env.from_string(m["content"]).render(**values)) for m in doc["messages"]]
        assert per_message == expected(artifact, step, inputs), (step, inputs)
        whole = env.from_string((tmp_path / f"{step}.jinja").read_text(encoding="utf-8")).render(**values)
        assert [(m["role"], m["content"]) for m in json.loads(whole)] == expected(artifact, step, inputs)


def test_jinja_template_is_readable(artifact, tmp_path):
    export_artifact(artifact, "jinja", tmp_path)
    doc = json.loads((tmp_path / "classify.messages.json").read_text(encoding="utf-8"))
    assert doc["messages"][-1]["content"].startswith("[[ ## message ## ]]\n{{ message }}\n\n")
    assert 'Card gone {"a": 1}' in doc["messages"][1]["content"]  # JSON braces left alone


def test_finetune_rows_from_traces(artifact, tmp_path):
    mods = modules(artifact)
    traces = [
        {"step": "classify", "inputs": {"message": "lost {card}"}, "outputs": {"intent": "card_lost"}},
        {"step": "classify", "inputs": {"message": "lost {card}"}, "outputs": {"intent": "card_lost"}},
        {"step": "classify", "inputs": {"message": "no label"}, "outputs": {}},
        {"step": "answer", "inputs": {"message": "m", "passages": ["p1", "p {2}"]},
         "outputs": {"reasoning": "because", "answer": "a {{b}}", "escalate": True}},
        {"step": "answer", "inputs": {"message": "m2"}, "outputs": {"answer": "x", "escalate": False}},
        {"step": "extract", "inputs": {"answer": "a", "intent": "other"},
         "outputs": {"fields": {"k": ["é", 1]}, "score": 0.25}},
        {"step": "gone", "inputs": {}, "outputs": {}},
    ]
    report = export_report(artifact, "finetune-jsonl", tmp_path, traces=traces)
    assert report.rows == {"classify": 1, "answer": 1, "extract": 1}
    assert report.skipped == {"classify": 1, "answer": 1, "extract": 0}
    notes = "\n".join(report.notes)
    assert "classify: skipped 1 row(s) missing a required field (intent)" in notes
    assert "answer: skipped 1 row(s) missing a required field (passages)" in notes
    assert "classify: dropped 1 duplicate" in notes and "name no step of this program: gone" in notes
    for step in ("classify", "answer", "extract"):
        rows = [json.loads(x) for x in (tmp_path / f"{step}.jsonl").read_text(encoding="utf-8").splitlines()]
        trace = next(t for t in traces if t["step"] == step)
        module = mods[step]
        for row in rows:
            system, user, assistant = row["messages"]
            assert [system["role"], user["role"], assistant["role"]] == ["system", "user", "assistant"]
            module.demos = []  # the fine-tuned prompt is the zero-demo prompt
            assert [system["content"], user["content"]] == [m.content for m in module.render(trace["inputs"])]
            parsed = ChatAdapter().parse(module.signature, assistant["content"],
                                         optional=module.optional_outputs)
            assert parsed == trace["outputs"]
    extract_row = json.loads((tmp_path / "extract.jsonl").read_text(encoding="utf-8"))
    assert json.loads(extract_row["messages"][2]["content"]) == {"fields": {"k": ["é", 1]}, "score": 0.25}
    classify_row = json.loads((tmp_path / "classify.jsonl").read_text(encoding="utf-8"))
    assert classify_row["messages"][2]["content"].endswith("[[ ## completed ## ]]")
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"] == report.rows and manifest["notes"] == report.notes


def test_finetune_rows_from_demos(artifact, tmp_path):
    report = export_report(artifact, "finetune-jsonl", tmp_path)
    assert report.rows == {"classify": 3, "answer": 1, "extract": 1}
    mods = modules(artifact)
    rows = [json.loads(x) for x in (tmp_path / "classify.jsonl").read_text(encoding="utf-8").splitlines()]
    parsed = [ChatAdapter().parse(mods["classify"].signature, r["messages"][2]["content"]) for r in rows]
    assert parsed == [{"intent": d["intent"]} for d in CLASSIFY_DEMOS]
    # A demo's assistant turn in the prompt is exactly a training row's reply.
    assert rows[0]["messages"][2]["content"] == mods["classify"].render({"message": "x"})[2].content


def test_load_traces_reads_the_compile_folder(artifact, tmp_path):
    assert load_traces(tmp_path / "nothing") == []
    trace = Trace(steps=[TraceStep(step="classify", module="predict", predictor="classify",
                                   inputs={"message": "hi {x}"}, outputs={"intent": "other"}),
                         TraceStep(step="classify.select", module="best_of_n", inputs={}, outputs={}),
                         TraceStep(step="classify", module="predict", predictor="classify", rejected=True,
                                   inputs={"message": "not kept"}, outputs={"intent": "other"})])
    write_compiled(tmp_path / "build", artifact, traces=[trace])
    rows = load_traces(tmp_path / "build")
    assert rows == [{"step": "classify", "inputs": {"message": "hi {x}"}, "outputs": {"intent": "other"}}]
    report = export_report(artifact, "finetune-jsonl", tmp_path / "ft", traces=rows)
    assert report.rows == {"classify": 1, "answer": 0, "extract": 0}
    assert any("answer: no training rows" in n for n in report.notes)
    (tmp_path / "bad.jsonl").write_text('{"step": "a"}\n[1]\n', encoding="utf-8")
    with pytest.raises(InputError, match="bad.jsonl:2"):
        load_traces(tmp_path / "bad.jsonl")


def test_markdown(artifact, tmp_path):
    files = export_artifact(artifact, "markdown", tmp_path)
    assert {p.name for p in files} == {"classify.md", "answer.md", "extract.md", "README.md", "manifest.json"}
    classify = (tmp_path / "classify.md").read_text(encoding="utf-8")
    assert "Classify the message {like this}." in classify
    assert "Literal {{ jinja }} and {% tags %} must survive." in classify
    assert "déjà vu 🚀" in classify and "## Demos (3)" in classify
    assert "[[ ## message ## ]]\n{message}\n\nRespond with" in classify
    answer = (tmp_path / "answer.md").read_text(encoding="utf-8")
    assert "Answer from the passages." in answer and "reasoning" in answer and "gpt-4o-mini" in answer
    assert "response_format" in (tmp_path / "extract.md").read_text(encoding="utf-8")
    index = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "[classify.md](classify.md)" in index and "export_demo" in index


@pytest.mark.parametrize("fmt", FORMATS)
def test_manifest_lists_every_file(artifact, tmp_path, fmt):
    out = tmp_path / "nested" / fmt
    files = export_artifact(artifact, fmt, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    on_disk = {p.name for p in out.iterdir()}
    assert set(manifest["files"]) == on_disk - {"manifest.json"}
    assert {p.name for p in files} == on_disk
    assert manifest["format"] == fmt and manifest["name"] == "export_demo"
    assert manifest["steps"] == ["classify", "answer", "extract"]
    assert "promptc_version" in manifest and "README.md" in manifest["files"]


def test_unknown_format(artifact, tmp_path):
    with pytest.raises(UsageError) as info:
        export_artifact(artifact, "yaml", tmp_path / "x")
    assert all(fmt in str(info.value) for fmt in FORMATS)
    assert not (tmp_path / "x").exists()


def test_step_names_never_overwrite_readme_or_manifest(tmp_path):
    spec = "version: 1\nname: n\nlms: {default: {model: offline}}\nprogram:\n" \
           "  - {step: README, signature: 'a -> b'}\n  - {step: manifest, signature: 'b -> c'}\n"
    artifact = ProgramArtifact.from_program(load_text(spec, lms={}).program)
    files = export_artifact(artifact, "openai-messages", tmp_path)
    assert {p.name for p in files} == {"README_step.json", "manifest_step.json", "README.md", "manifest.json"}
    md = export_artifact(artifact, "markdown", tmp_path / "md")
    assert {p.name for p in md} == {"README_step.md", "manifest_step.md", "README.md", "manifest.json"}
