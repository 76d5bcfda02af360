"""Control flow, retrieval, agents, constraints and Python programs, end to end."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import promptc
from promptc.errors import SpecError
from promptc.spec.loader import load, load_text
from tests.conftest import ROOT, TEST_KEY, run_cli

ENV = {"PROMPTC_TEST_KEY": TEST_KEY}


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("spec", ["triage", "multihop_rag", "cited_answer", "agent"])
def test_example_specs_run_end_to_end_offline(spec, tmp_path):
    data = f"datasets/{ {'multihop_rag': 'multihop', 'cited_answer': 'cited'}.get(spec, spec) }/dev.jsonl"
    out = tmp_path / "out.jsonl"
    result = run_cli("run", f"specs/{spec}.yaml", "-i", data, "-o", str(out))
    assert result.returncode == 0, result.stderr
    done = rows(out)
    assert done and all(r["_error"] is None for r in done)
    evaluated = run_cli("eval", f"specs/{spec}.yaml", "--data", data)
    assert evaluated.returncode in (0, 1), evaluated.stderr  # runs and scores; quality is the LM's


def test_multihop_loop_state_and_traces():
    program = load(ROOT / "specs/multihop_rag.yaml").program
    prediction = program(question="In which city was the author of The Glass Orchard born?")
    steps = prediction.trace.steps
    assert [(s.step, s.iteration) for s in steps if s.step in ("generate_query", "search")] == [
        ("generate_query", 0), ("search", 0), ("generate_query", 1), ("search", 1)]
    answer_step = next(s for s in steps if s.step == "answer")
    context = answer_step.inputs["context"]
    assert len(context) == len(set(context)) and 2 <= len(context) <= 4  # de-duplicated union of both hops
    assert any("Glass Orchard" in p for p in context)


def test_triage_branches_and_trace_records_the_case():
    program = load(ROOT / "specs/triage.yaml").program
    prediction = program(message="I was charged twice for my subscription")
    taken = [s for s in prediction.trace.steps if s.step != "classify"]
    assert len(taken) == 1 and taken[0].branch and taken[0].branch.startswith("route[")
    assert prediction.queue in ("billing", "tech", "general")
    assert [f.name for f in program.output_fields] == ["reply", "queue"]


FLOW = """
version: 1
signatures:
  classify:
    inputs: {message: str}
    outputs: {queue: {type: enum, values: [billing, tech]}}
program:
  - step: classify
    signature: classify
  - branch: route
    cases:
      - when: "classify.queue == 'billing'"
        steps:
          - step: billing
            signature: "message -> reply"
      - else: true
        steps:
          - step: tech
            signature: "message -> reply"
  - step: final
    signature: "reply -> summary"
    inputs: {reply: route.reply}
"""


def test_branch_outputs_flow_and_bad_references_are_located():
    program = load_text(FLOW).program
    assert str(program.bindings(program.steps[-1].name)["reply"]) == "route.reply"
    with pytest.raises(SpecError) as info:
        load_text(FLOW.replace("route.reply", "billing.reply"), file="f.yaml")
    assert "f.yaml:22:" in str(info.value) and "read before it can exist" in str(info.value)
    with pytest.raises(SpecError, match="'biling' is not a value of classify.queue"):
        load_text(FLOW.replace("== 'billing'", "== 'biling'"))
    with pytest.raises(SpecError, match=r"f.yaml:12:15: program\[1\].cases\[0\].when: unknown reference 'clasify.queue'"):
        load_text(FLOW.replace("classify.queue ==", "clasify.queue =="), file="f.yaml")
    with pytest.raises(SpecError, match="invalid condition"):
        load_text(FLOW.replace("classify.queue == 'billing'", "classify.queue = 'billing'"))


def test_loop_state_must_come_from_the_body():
    spec = textwrap.dedent("""
        version: 1
        retrievers:
          world: {type: bm25, corpus: %s}
        program:
          - repeat: 2
            name: hops
            state:
              context: {type: "list[str]", append: nowhere.passages}
            steps:
              - step: search
                module: retrieve
                signature: "question -> passages: list[str]"
          - step: answer
            signature: "context: list[str], question -> answer"
            inputs: {context: hops.context}
    """) % (ROOT / "datasets/world/corpus.jsonl")
    with pytest.raises(SpecError, match="'nowhere.passages' is not produced in the loop body"):
        load_text(spec)
    assert load_text(spec.replace("nowhere.passages", "search.passages")).program


def cited_spec(tmp_path: Path, base_url: str, soft_only: bool = False) -> Path:
    text = (ROOT / "specs/cited_answer.yaml").read_text().replace("../datasets", str(ROOT / "datasets"))
    text = text.replace("version: 1\n", f"version: 1\nlm: {{model: fake-model, base_url: \"{base_url}\", "
                        "api_key_env: PROMPTC_TEST_KEY, max_retries: 0}\n")
    if soft_only:
        text = text.replace("limit: 40", "limit: 400")
    path = tmp_path / "cited.yaml"
    path.write_text(text)
    return path


def test_constraints_retry_with_feedback_then_fail_or_record(tmp_path, fake_server):
    spec = cited_spec(tmp_path, fake_server.base_url)
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Who wrote The Glass Orchard?", "answer": "Mira Castell"}) + "\n")
    long = "[[ ## answer ## ]]\n" + " ".join(["word"] * 50) + "\n\n[[ ## completed ## ]]"
    good = "[[ ## answer ## ]]\nMira Castell wrote it [1].\n\n[[ ## completed ## ]]"
    fake_server.queue([long, good])
    out = tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out), "--no-cache", env=ENV)
    assert result.returncode == 0, result.stderr
    row = rows(out)[0]
    assert row["answer"] == "Mira Castell wrote it [1]." and row["_usage"]["constraint_retries"] == 1
    retry_prompt = fake_server.requests[-1].body["messages"][-1]["content"]
    assert "Answer in at most 40 words." in retry_prompt

    # Still too long after max_retries: the hard constraint fails the row, the batch goes on.
    fake_server.queue([long, long, long])
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out), "--overwrite", "--no-cache", env=ENV)
    assert result.returncode == 1
    assert "Answer in at most 40 words" in rows(out)[0]["_error"]

    # A soft constraint (no citation) is kept after its retries and recorded.
    soft = cited_spec(tmp_path, fake_server.base_url, soft_only=True)
    no_cite = "[[ ## answer ## ]]\nMira Castell.\n\n[[ ## completed ## ]]"
    fake_server.queue([no_cite, no_cite, no_cite])
    result = run_cli("eval", str(soft), "--data", str(data), "--output", str(tmp_path / "e.jsonl"),
                     "--no-cache", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "constraint violations: 1 soft, 0 hard" in result.stdout
    assert rows(tmp_path / "e.jsonl")[0]["violations"] == ["contains_citation(answer)"]


def test_react_agent_with_scripted_tool_calls(tmp_path, fake_server):
    text = (ROOT / "specs/agent.yaml").read_text().replace("../datasets", str(ROOT / "datasets"))
    text = text.replace("version: 1\n", f"version: 1\nlm: {{model: fake-model, base_url: \"{fake_server.base_url}\", "
                        "api_key_env: PROMPTC_TEST_KEY}\n")
    spec = tmp_path / "agent.yaml"
    spec.write_text(text)
    (tmp_path / "agent_tools.py").write_text((ROOT / "specs/agent_tools.py").read_text())
    turn = "[[ ## next_thought ## ]]\n{t}\n\n[[ ## next_tool_name ## ]]\n{n}\n\n[[ ## next_tool_args ## ]]\n{a}\n\n[[ ## completed ## ]]"
    fake_server.queue([
        turn.format(t="find Velmora", n="search", a='{"query": "Velmora founded"}'),
        turn.format(t="compute", n="subtract", a='{"a": 1402, "b": 1288}'),
        turn.format(t="done", n="finish", a="{}"),
        "[[ ## reasoning ## ]]\n1402 - 1288 = 114\n\n[[ ## answer ## ]]\n114\n\n[[ ## completed ## ]]",
    ])
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "How many years after Velmora was Dunhallow founded?"}) + "\n")
    out = tmp_path / "out.jsonl"
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out), "--no-cache", env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert rows(out)[0]["answer"] == 114
    program = load(spec).program
    assert program.tools["subtract"].args == {"a": "int", "b": "int"}


MODULE = '''
import promptc


class TwoStep(promptc.Module):
    signature = "message -> queue: Literal['billing', 'tech'], reply"

    def __init__(self):
        self.classify = promptc.Predict("message -> queue: Literal['billing', 'tech']")
        self.respond = promptc.ChainOfThought("message, queue -> reply")

    async def forward(self, message):
        queue = (await self.classify(message=message)).queue
        if queue == "billing":
            reply = (await self.respond(message=message, queue=queue)).reply
        else:
            reply = "Please restart the app."
        return {"queue": queue, "reply": reply}
'''


def test_python_module_program_runs_compiles_and_exports(tmp_path):
    (tmp_path / "my_pipelines.py").write_text(MODULE)
    spec = tmp_path / "py.yaml"
    spec.write_text("version: 1\nname: py\nprogram: my_pipelines:TwoStep\nmetric: {type: label_accuracy, field: queue}\n")
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"message": m, "queue": q}) + "\n" for m, q in
                            [("I was charged twice", "billing"), ("The app crashes", "tech"),
                             ("Refund my invoice", "billing"), ("Login page is broken", "tech")] * 3))
    assert run_cli("validate", str(spec), cwd=tmp_path).returncode == 0
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(spec), "-i", str(data), "-o", str(out), cwd=tmp_path).returncode == 0
    assert all(r["queue"] in ("billing", "tech") for r in rows(out))
    build = tmp_path / "build"
    compiled = run_cli("compile", str(spec), "--train", str(data), "--dev", str(data), "--out", str(build),
                       "--optimizer", "labeled_few_shot", cwd=tmp_path)
    assert compiled.returncode == 0, compiled.stderr
    artifact = json.loads((build / "program.json").read_text())
    assert {s["name"] for s in artifact["steps"]} == {"classify", "respond"}
    assert {p["name"] for p in artifact["predictors"]} == {"classify", "respond"}
    assert artifact["predictors"][0]["demos"]
    again = run_cli("run", "--program", str(build), "-i", str(data), "-o", str(tmp_path / "o2.jsonl"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    exported = run_cli("export", str(build), "--format", "markdown", "--out", str(tmp_path / "md"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr


def test_python_api_module_in_process():
    class Echo(promptc.Module):
        signature = "question -> answer"

        def __init__(self):
            self.answer = promptc.Predict("question -> answer")

        async def forward(self, question):
            return await self.answer(question=question)

    from promptc.core.module_program import ModuleProgram

    program = ModuleProgram(Echo(), lms={"default": promptc.OfflineLM()})
    prediction = program(question="What is the capital of Velmora?")
    assert isinstance(prediction.answer, str) and prediction.trace.steps[0].step == "answer"


def test_compile_bootstraps_demos_for_steps_inside_branches(tmp_path):
    out = tmp_path / "build"
    result = run_cli("compile", "specs/triage.yaml", "--out", str(out), "--optimizer", "bootstrap_few_shot")
    assert result.returncode == 0, result.stderr
    traces = rows(out / "traces.jsonl")
    assert {t["step"] for t in traces} >= {"classify"}
    bootstrapped = next(t for t in rows(out / "trials.jsonl") if t["kind"] == "bootstrapped")["state"]
    assert bootstrapped["classify"]["demos"]
    assert any(bootstrapped[name]["demos"] for name in ("billing_reply", "tech_reply", "general_reply",
                                                        "tech_escalation"))
    again = run_cli("eval", "--program", str(out), "--data", "datasets/triage/dev.jsonl")
    assert again.returncode in (0, 1), again.stderr


SAMPLING = """
version: 1
name: sampling
lm: {model: fake-model, base_url: "%s", api_key_env: PROMPTC_TEST_KEY, temperature: 0}
program:
  - step: draft
    module: %s
    signature: "question -> answer"
    %s
metric: {type: contains, field: answer}
"""


def test_best_of_n_and_refine_from_a_spec(tmp_path, fake_server):
    replies = iter(["[[ ## answer ## ]]\nshort\n\n[[ ## completed ## ]]",
                    "[[ ## answer ## ]]\na much longer and better answer\n\n[[ ## completed ## ]]",
                    "[[ ## answer ## ]]\nmid answer\n\n[[ ## completed ## ]]"] * 4)
    fake_server.responder = lambda body: next(replies)
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "Say something", "answer": "longer"}) + "\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(SAMPLING % (fake_server.base_url, "best_of_n",
                                "n: 3\n    reward: {type: min_words, limit: 4, field: answer}"))
    out = tmp_path / "o.jsonl"
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out), "--no-cache", env=ENV)
    assert result.returncode == 0, result.stderr
    assert rows(out)[0]["answer"] == "a much longer and better answer"
    temps = {r.body.get("temperature") for r in fake_server.requests}
    assert temps == {0.7}  # samples are drawn at temperature > 0

    fake_server.reset_log()
    spec.write_text(SAMPLING % (fake_server.base_url, "refine",
                                "n: 3\n    threshold: 1.0\n    reward: {type: min_words, limit: 4, field: answer}"))
    replies = iter(["[[ ## answer ## ]]\nshort\n\n[[ ## completed ## ]]",
                    "[[ ## answer ## ]]\nnow a longer answer here\n\n[[ ## completed ## ]]"])
    fake_server.responder = lambda body: next(replies)
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out), "--overwrite", "--no-cache", env=ENV)
    assert result.returncode == 0, result.stderr
    assert rows(out)[0]["answer"] == "now a longer answer here" and fake_server.request_count == 2
    assert "feedback" in json.dumps(fake_server.requests[1].body["messages"])

    with pytest.raises(SpecError, match="module 'best_of_n' needs 'reward' \\(a metric that scores"):
        load_text(SAMPLING % (fake_server.base_url, "best_of_n", "n: 2"))
    with pytest.raises(SpecError, match="option 'tools' does not apply to module 'best_of_n' \\(it is for react\\)"):
        load_text(SAMPLING % (fake_server.base_url, "best_of_n", "tools: [x]"))


def test_multi_chain_comparison_offline():
    spec = "version: 1\nprogram:\n  - step: solve\n    module: multi_chain_comparison\n    m: 3\n    signature: 'question -> answer'\n"
    prediction = load_text(spec).program(question="What is 2 plus 2?")
    assert isinstance(prediction.answer, str)
    assert sum(1 for s in prediction.trace.steps if s.step == "solve.sample") == 3


def test_compile_runs_on_loops_retrieval_constraints_and_agents(tmp_path):
    for name in ("multihop_rag", "cited_answer", "agent"):
        out = tmp_path / name
        result = run_cli("compile", f"specs/{name}.yaml", "--out", str(out), "--optimizer", "bootstrap_few_shot")
        assert result.returncode == 0, (name, result.stderr)
        assert (out / "program.json").exists()
        again = run_cli("eval", "--program", str(out), "--data",
                        f"datasets/{ {'multihop_rag': 'multihop', 'cited_answer': 'cited'}.get(name, name) }/dev.jsonl")
        assert again.returncode in (0, 1), again.stderr
        exported = run_cli("export", str(out), "--format", "openai-messages", "--out", str(tmp_path / f"x-{name}"))
        assert exported.returncode == 0, exported.stderr
        if name != "agent":
            assert "retrieval steps call no LM" in exported.stderr
            assert not (tmp_path / f"x-{name}" / "search.json").exists()


def test_colbert_retriever_from_a_spec(tmp_path):
    from promptc.testing import FakeColBERTServer

    passages = ["Velmora is a city in Oskaria.", "Dunhallow is a city in Brevia.", "Cats sleep a lot."]
    with FakeColBERTServer(passages) as server:
        spec = (f"version: 1\nretrievers:\n  wiki: {{type: colbert, url: \"{server.url}\"}}\nprogram:\n"
                "  - step: search\n    module: retrieve\n    signature: 'question -> passages: list[str]'\n    k: 1\n")
        prediction = load_text(spec).program(question="Where is Velmora?")
        assert prediction.passages == ["Velmora is a city in Oskaria."]
        assert server.request_count == 1


def test_module_program_dry_run_and_inspect(tmp_path):
    (tmp_path / "my_pipelines.py").write_text(MODULE)
    spec = tmp_path / "py.yaml"
    spec.write_text("version: 1\nname: py\nprogram: my_pipelines:TwoStep\n")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"message": "I was charged twice"}) + "\n")
    dry = run_cli("run", str(spec), "-i", str(data), "-o", str(tmp_path / "o.jsonl"), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "I was charged twice" in dry.stdout and "2 LM call(s)" in dry.stdout
    shown = run_cli("inspect", str(spec), "--step", "respond", "--example", '{"message": "hi"}', cwd=tmp_path)
    assert shown.returncode == 0 and "hi" in shown.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nprogram: my_pipelines:Nope\n")
    result = run_cli("validate", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and "bad.yaml:2:10: program: cannot import program" in result.stderr


def test_bad_corpus_is_one_clear_error(tmp_path):
    spec = tmp_path / "r.yaml"
    body = ("version: 1\nretrievers:\n  w: {type: bm25, corpus: %s}\nprogram:\n  - step: s\n    module: retrieve\n"
            "    signature: 'question -> passages: list[str]'\n")
    spec.write_text(body.replace("%s", "missing.jsonl"))
    missing = run_cli("validate", str(spec))
    assert missing.returncode == 2 and "r.yaml:3:27: retrievers.w.corpus: corpus not found" in missing.stderr
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\nnot json\n')
    spec.write_text(body.replace("%s", "bad.jsonl"))
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "x"}) + "\n" * 1)
    out = tmp_path / "o.jsonl"
    result = run_cli("run", str(spec), "-i", str(data), "-o", str(out))
    assert result.returncode == 2 and "bad.jsonl:2:" in result.stderr
    assert not out.exists() or not out.read_text().strip()
