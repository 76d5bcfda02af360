"""Modules compose: every distinct LM call is a predictor, named by path, that compile can tune."""

from __future__ import annotations

import asyncio
import json

import pytest

import promptc
from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.module import CallContext
from promptc.core.module_program import ModuleProgram
from promptc.core.modules import Predict, SignatureModule
from promptc.core.program import PredictorState
from promptc.errors import UsageError
from tests.conftest import ROOT, run_cli


def test_every_constructor_takes_a_string_or_a_signature():
    sig = promptc.Signature.parse("question -> answer", instructions="Be brief.")
    for text_or_sig in ("question -> answer", sig):
        for module in (promptc.Predict(text_or_sig), promptc.ChainOfThought(text_or_sig),
                       promptc.ReAct(text_or_sig, tools=["search"]), promptc.BestOfN(text_or_sig, n=2),
                       promptc.Refine(text_or_sig, n=2), promptc.MultiChainComparison(text_or_sig, m=2)):
            assert [f.name for f in module.signature.inputs] == ["question"]
    retrieve = promptc.Retrieve("query -> passages: list[str]", retriever="world", k=2)
    assert (retrieve.retriever, retrieve.k, retrieve.named_predictors()) == ("world", 2, [])
    with pytest.raises(ValueError, match="exactly one str input"):
        promptc.Retrieve("a, b -> passages: list[str]", retriever="world")


def test_composites_hold_one_predictor_per_distinct_call():
    def names(module: SignatureModule) -> list[str]:
        return [n for n, _ in GraphProgram([Step(module)]).named_predictors()]

    assert names(promptc.Predict("q -> a", name="s")) == ["s"]
    assert names(promptc.ChainOfThought("q -> a", name="s")) == ["s"]
    assert names(promptc.BestOfN("q -> a", name="s")) == ["s"]
    assert names(promptc.Refine("q -> a", name="s")) == ["s.attempt", "s.revise"]
    assert names(promptc.MultiChainComparison("q -> a", name="s")) == ["s.sample", "s.compare"]
    assert names(promptc.ReAct("q -> a", tools=["t"], name="s")) == ["s.react", "s.extract"]
    refine = promptc.Refine("q -> a", name="s")
    assert [f.name for f in refine.revise.signature.inputs] == ["q", "feedback"]
    assert [f.name for f in promptc.ChainOfThought("q -> a").predict.signature.outputs] == ["reasoning", "a"]


def test_constraints_go_to_the_predictors_that_write_the_answer():
    rules = object()
    react = promptc.ReAct("q -> a", tools=["t"], name="s")
    react.constraints = rules
    assert react.extract.constraints is rules and react.react.constraints is None
    refine = promptc.Refine("q -> a", name="s")
    refine.constraints = rules
    assert refine.attempt.constraints is rules and refine.revise.constraints is rules
    mcc = promptc.MultiChainComparison("q -> a", name="s")
    mcc.constraints = rules
    assert mcc.compare.constraints is rules and mcc.sample.constraints is None


class Hops(promptc.Module):
    signature = "question -> answer"

    def __init__(self):
        self.hops = [promptc.Predict("question -> query") for _ in range(2)]
        self.tools = {"check": promptc.ChainOfThought("question, query -> ok: bool")}
        self.agent = promptc.ReAct("question -> answer", tools=[])

    async def forward(self, question):
        query = ""
        for hop in self.hops:
            query = (await hop(question=question)).query
        return {"answer": query}


def test_module_program_names_predictors_by_path_without_touching_the_callers_module():
    mine = Hops()
    program = ModuleProgram(mine, lms={"default": promptc.OfflineLM()})
    assert [n for n, _ in program.named_predictors()] == [
        "hops.0", "hops.1", "tools.check", "agent.react", "agent.extract"]
    assert [s.name for s in program.steps] == ["hops.0", "hops.1", "tools.check", "agent"]
    assert mine.hops[0].name == "signature" and mine.agent.name == "signature"  # the caller's, untouched
    tuned = program.with_state({"hops.1": PredictorState(instructions="Write one query.")})
    assert tuned.predictor("hops.1").signature.instructions == "Write one query."
    assert program.predictor("hops.1").signature.instructions == ""
    prediction = tuned(question="Where was Nadia Quen born?")
    assert [s.predictor for s in prediction.trace.steps] == ["hops.0", "hops.1"]
    with pytest.raises(UsageError, match="no predictor.*'nope'|nope"):
        program.with_state({"nope": PredictorState()})


def test_a_module_called_outside_a_run_says_so():
    with pytest.raises(UsageError, match="outside a program run"):
        asyncio.run(promptc.Predict("q -> a")(q="x"))


def test_retrieve_is_a_plain_module_that_calls_no_lm():
    class Retriever:
        async def search(self, query: str, k: int) -> list:
            return [type("P", (), {"text": f"{query}-{i}"})() for i in range(k)]

    module = promptc.Retrieve(retriever="world", k=2, name="search")
    ctx = CallContext(lms={}, retrievers={"world": Retriever()})
    assert asyncio.run(module.acall({"query": "q"}, ctx)) == {"passages": ["q-0", "q-1"]}
    assert ctx.trace.steps[0].predictor is None and module.render({"query": "q"}) == []


def test_readme_multihop_runs_compiles_and_evaluates_from_the_cli(tmp_path):
    spec = ROOT / "specs/multihop_module.yaml"
    assert run_cli("validate", str(spec)).returncode == 0
    out = tmp_path / "build"
    compiled = run_cli("compile", str(spec), "--optimizer", "bootstrap_few_shot", "--out", str(out))
    assert compiled.returncode == 0, compiled.stderr
    artifact = json.loads((out / "program.json").read_text())
    predictors = {p["name"]: p for p in artifact["predictors"]}
    assert set(predictors) == {"generate_query", "generate_answer"}
    assert predictors["generate_query"]["signature"]["outputs"][0]["name"] == "reasoning"
    assert (out / "prompts" / "generate_query.md").exists() and (out / "prompts" / "generate_answer.md").exists()
    evaluated = run_cli("eval", "--program", str(out), "--data", "datasets/multihop/dev.jsonl", "--limit", "5")
    assert evaluated.returncode in (0, 1), evaluated.stderr


def test_predict_is_the_only_leaf():
    leaves = [promptc.Predict("q -> a")]
    composites = [promptc.ChainOfThought("q -> a"), promptc.ReAct("q -> a", tools=[]),
                  promptc.BestOfN("q -> a"), promptc.MultiChainComparison("q -> a")]
    assert all(isinstance(m, Predict) for m in leaves)
    assert not any(isinstance(m, Predict) for m in composites)
    assert all(isinstance(p, Predict) for m in composites for p in m.predictors())
