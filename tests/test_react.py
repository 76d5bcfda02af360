"""ReAct and tools: tool calls traced with their args, finish, max_iters, errors as observations."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest

from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.module import CallContext
from promptc.core.program import PredictorState
from promptc.core.react import ReAct
from promptc.core.signature import Signature
from promptc.core.tools import (
    Tool,
    tool_from_callable,
    tool_from_import_path,
    tool_from_retriever,
)
from promptc.errors import LMAuthError
from promptc.lm.offline import OfflineLM
from promptc.lm.openai_client import OpenAICompatibleLM
from tests.conftest import TEST_KEY

SIG = Signature.parse("question -> answer: str, year: int", name="qa",
                      instructions="Answer the history question.")


def reply(**fields: object) -> str:
    body = "\n\n".join(f"[[ ## {k} ## ]]\n{v if isinstance(v, str) else json.dumps(v)}"
                       for k, v in fields.items())
    return body + "\n\n[[ ## completed ## ]]"


def turn(thought: str, tool: str, args: object) -> str:
    return reply(next_thought=thought, next_tool_name=tool, next_tool_args=args)


EXTRACT = reply(reasoning="The passages say 1889.", answer="Paris", year="1889")


@dataclass
class Passage:
    text: str


class FakeRetriever:
    name = "wiki"

    def __init__(self) -> None:
        self.queries: list[tuple[str, int]] = []

    async def search(self, query: str, k: int) -> list[Passage]:
        self.queries.append((query, k))
        return [Passage("The Eiffel Tower was built in 1889."), Passage("It is in Paris.")][:k]


def add(a: int, b: int = 0) -> int:
    """Add two integers.

    More text that is not the description.
    """
    return a + b


async def boom(x: str) -> str:
    """Always fails."""
    raise RuntimeError("kaput")


def tools_for(retriever: FakeRetriever) -> dict[str, Tool]:
    return {"search": tool_from_retriever(retriever, name="search", k=2),
            "add": tool_from_callable(add), "boom": tool_from_callable(boom)}


def run_module(module: ReAct, inputs: dict, lm, tools: dict) -> tuple[dict, object]:
    async def go():
        ctx = CallContext(lms={"default": lm}, tools=tools)
        try:
            return await module.acall(inputs, ctx), ctx.trace
        finally:
            close = getattr(lm, "aclose", None)
            if close is not None:
                await close()

    return asyncio.run(go())


def fake_lm(server) -> OpenAICompatibleLM:
    return OpenAICompatibleLM("fake-model", base_url=server.base_url, api_key=TEST_KEY)


def last_user(request) -> str:
    return request.body["messages"][-1]["content"]


def test_tool_calls_are_made_traced_and_finish_ends_the_loop(fake_server):
    retriever = FakeRetriever()
    fake_server.queue([
        turn("Look it up.", "search", {"query": "Eiffel Tower year"}),
        turn("Check arithmetic.", "add", {"a": "1880", "b": 9}),
        turn("I have it.", "finish", {}),
        EXTRACT,
    ])
    module = ReAct(SIG, tools=["search", "add"], max_iters=5, name="agent")
    out, trace = run_module(module, {"question": "When was the Eiffel Tower built?"},
                            fake_lm(fake_server), tools_for(retriever))
    assert out == {"answer": "Paris", "year": 1889}
    assert retriever.queries == [("Eiffel Tower year", 2)]
    requests = fake_server.requests
    assert len(requests) == 4

    first_system = requests[0].body["messages"][0]["content"]
    assert first_system.index("Answer the history question.") < first_system.index("You are an agent")
    assert "(1) search:" in first_system and "(3) finish:" in first_system and "boom" not in first_system
    assert "must be exactly one of: search; add; finish" in first_system

    tool_steps = [s for s in trace.steps if s.module == "tool"]
    assert [(s.step, s.inputs, s.iteration) for s in tool_steps] == [
        ("agent.search", {"query": "Eiffel Tower year"}, 0), ("agent.add", {"a": "1880", "b": 9}, 1)]  # as the LM wrote them
    assert tool_steps[0].outputs["observation"] == (
        "[1] The Eiffel Tower was built in 1889.\n[2] It is in Paris.")
    assert tool_steps[1].outputs == {"observation": "1889"} and tool_steps[1].error is None
    assert [s.step for s in trace.steps] == [
        "agent.react", "agent.search", "agent.react", "agent.add", "agent.react", "agent.extract", "agent"]
    assert [s.iteration for s in trace.for_step("agent.react")] == [0, 1, 2]
    assert trace.steps[-1].module == "react" and trace.steps[-1].outputs == out
    assert trace.usage.calls == 4

    # The observations are in the later prompts and in the extraction's trajectory.
    assert "observation: [1] The Eiffel Tower was built in 1889." in last_user(requests[1])
    extract_prompt = last_user(requests[3])
    assert "observation: 1889" in extract_prompt and "tool: finish" in extract_prompt
    assert "[[ ## reasoning ## ]]" in extract_prompt and "next_tool_name" not in extract_prompt


def test_max_iters_caps_the_loop(fake_server):
    def responder(body):
        if "[[ ## next_tool_name ## ]]" in body["messages"][-1]["content"]:
            return turn("Again.", "search", {"query": "more"})
        return EXTRACT

    fake_server.responder = responder
    retriever = FakeRetriever()
    module = ReAct(SIG, tools=["search"], max_iters=3, name="agent")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server), tools_for(retriever))
    assert out["year"] == 1889
    assert len(retriever.queries) == 3 and len(trace.for_step("agent.react")) == 3
    assert len(fake_server.requests) == 4


def test_errors_become_observations_and_the_loop_goes_on(fake_server):
    fake_server.queue([
        turn("Try boom.", "boom", {"x": "1"}),
        turn("Try a made-up tool.", "teleport", {}),
        turn("Bad args.", "add", {"c": 1}),
        turn("Not an object.", "add", "[1, 2]"),
        turn("Done.", "finish", ""),
        EXTRACT,
    ])
    module = ReAct(SIG, tools=["boom", "add"], name="agent")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server), tools_for(FakeRetriever()))
    assert out == {"answer": "Paris", "year": 1889}
    boom_step = trace.for_step("agent.boom")[0]
    assert boom_step.error == "RuntimeError: kaput"
    assert boom_step.outputs["observation"] == "error: tool 'boom' raised RuntimeError: kaput"
    prompts = [last_user(r) for r in fake_server.requests]
    assert "observation: error: tool 'boom' raised RuntimeError: kaput" in prompts[1]
    assert "there is no tool named 'teleport'; next_tool_name must be one of: boom, add, finish" in prompts[2]
    assert "unknown argument(s) 'c' for tool 'add'" in prompts[3]
    assert "next_tool_args must be a JSON object" in prompts[4]
    assert len(trace.for_step("agent.add")) == 1  # the bad-args call reached the tool's checks only


def test_fatal_lm_errors_from_a_tool_propagate(fake_server):
    async def needs_lm(x: str) -> str:
        raise LMAuthError("bad key")

    fake_server.queue([turn("Go.", "needs_lm", {"x": "1"})])
    module = ReAct(SIG, tools=["needs_lm"], name="agent")
    with pytest.raises(LMAuthError):
        run_module(module, {"question": "q"}, fake_lm(fake_server), {"needs_lm": needs_lm})


def test_unreadable_turn_ends_the_loop_and_extracts(fake_server):
    fake_server.queue(["no markers at all", "still nothing", EXTRACT])
    module = ReAct(SIG, tools=["add"], name="agent")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server), tools_for(FakeRetriever()))
    assert out["answer"] == "Paris"
    loop = trace.for_step("agent.react")
    assert len(loop) == 1 and loop[0].attempts == 2 and loop[0].error


def test_offline_lm_runs_to_completion():
    module = ReAct(SIG, tools=["search", "add"], max_iters=3, name="agent")
    out, trace = run_module(module, {"question": "When was the Eiffel Tower built?"}, OfflineLM(),
                            tools_for(FakeRetriever()))
    assert set(out) == {"answer", "year"} and isinstance(out["year"], int)
    assert trace.steps[-1].step == "agent"


def test_compiled_state_reaches_the_loop_and_the_extract_step(fake_server):
    program = GraphProgram([Step(ReAct(SIG, tools=["add"], name="agent"), {})])
    assert [name for name, _ in program.named_predictors()] == ["agent.react", "agent.extract"]
    demo = {"question": "When did WW2 end?", "answer": "Europe", "year": 1945}
    tuned = program.with_state({"agent.react": PredictorState(instructions="Be terse."),
                                "agent.extract": PredictorState(instructions="Answer fully.", demos=[demo])})
    module = tuned.steps[0].module
    assert isinstance(module, ReAct) and program.predictor("agent.extract").demos == []
    fake_server.queue([turn("Done.", "finish", {}), EXTRACT])
    run_module(module, {"question": "q"}, fake_lm(fake_server), tools_for(FakeRetriever()))
    loop_msgs, extract_msgs = (r.body["messages"] for r in fake_server.requests)
    assert loop_msgs[0]["content"].count("Be terse.") == 1 and len(loop_msgs) == 2  # no demos
    assert "Answer fully." not in loop_msgs[0]["content"]
    assert "Answer fully." in extract_msgs[0]["content"] and "Be terse." not in extract_msgs[0]["content"]
    assert "When did WW2 end?" in extract_msgs[1]["content"]
    # A dry run renders the first turn without any tool configured.
    rendered = module.render({"question": "{question}"})
    assert "(1) add: (described when the program runs)" in rendered[0].content


def test_tool_from_callable_reads_the_signature_and_docstring():
    tool = tool_from_callable(add)
    assert (tool.name, tool.description, tool.args, tool.required) == (
        "add", "Add two integers.", {"a": "int", "b": "int"}, ("a",))
    result = asyncio.run(tool.invoke({"a": "2"}))
    assert result.observation == "2" and result.error is None
    bad = asyncio.run(tool.invoke({"a": "two"}))
    assert bad.observation.startswith("error: argument 'a' of tool 'add'") and bad.error
    missing = asyncio.run(tool.invoke({}))
    assert missing.observation == "error: missing argument(s) 'a' for tool 'add'"


def test_tool_from_import_path_and_retriever():
    tool = tool_from_import_path("tests.test_react:add", name="plus")
    assert tool.name == "plus" and tool.args == {"a": "int", "b": "int"}
    with pytest.raises(ValueError, match="cannot import tool"):
        tool_from_import_path("tests.no_such_module:add")
    retriever = FakeRetriever()
    search = tool_from_retriever(retriever, name="search", k=1)
    assert search.description == "Search wiki and return the top 1 passages for a query."
    assert asyncio.run(search.invoke({"query": "x"})).observation == "[1] The Eiffel Tower was built in 1889."


def test_bootstrap_makes_demos_for_the_loop_and_the_extract_call(fake_server):
    from promptc.core.example import Example
    from promptc.metrics.config import build_metrics, parse_metric
    from promptc.optimize.bootstrap import bootstrap, combine

    def responder(body):
        prompt = body["messages"][-1]["content"]
        if "next_thought" in body["messages"][0]["content"] and "Step 1" not in prompt:
            return turn("Look it up.", "search", {"query": "Eiffel Tower"})
        if "next_thought" in body["messages"][0]["content"]:
            return turn("I know enough.", "finish", {})
        return EXTRACT

    fake_server.responder = responder
    program = GraphProgram([Step(ReAct(SIG, tools=["search"], name="agent"), {})],
                           lms={"default": fake_lm(fake_server)}, tools=tools_for(FakeRetriever()))
    metric = build_metrics([parse_metric(type="exact_match", field="answer")], default_field="answer")[0]
    train = [Example({"question": f"Where is it? ({i})", "answer": "Paris", "year": 1889},
                     input_keys=["question"]) for i in range(3)]

    async def go():
        try:
            return await bootstrap(program, train, metric, max_demos=2)
        finally:
            await program.aclose()

    boot = asyncio.run(go())
    state = combine(program, boot, train, max_bootstrapped=2, max_labeled=0)
    loop, extract = state["agent.react"].demos, state["agent.extract"].demos
    # Each successful run gives the loop one demo per turn: the trajectory so far and the choice made.
    assert [d["next_tool_name"] for d in loop] == ["search", "finish"]
    assert "Step 1" in loop[1]["trajectory"] and loop[0]["trajectory"].startswith("(empty")
    assert len(extract) == 2 and all(d["answer"] == "Paris" and d["reasoning"] for d in extract)
