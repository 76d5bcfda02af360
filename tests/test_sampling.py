"""best_of_n, refine and multi_chain_comparison: distinct samples, rewards, feedback, comparison."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from promptc.core.graph import Step
from promptc.core.graph_program import GraphProgram
from promptc.core.module import CallContext
from promptc.core.program import PredictorState
from promptc.core.sampling import BestOfN, MultiChainComparison, Refine
from promptc.core.signature import Signature
from promptc.errors import ParseError
from promptc.lm.cache import SQLiteCache
from promptc.lm.layers import CachedLM
from promptc.lm.offline import OfflineLM
from promptc.lm.openai_client import OpenAICompatibleLM
from promptc.metrics.base import MetricResult
from tests.conftest import TEST_KEY

SIG = Signature.parse("question -> answer: int", name="math", instructions="Answer with a number.")


def reply(**fields: object) -> str:
    return "\n\n".join(f"[[ ## {k} ## ]]\n{v}" for k, v in fields.items()) + "\n\n[[ ## completed ## ]]"


def answers(*values: object):
    """A responder giving each request the next value as `answer`."""
    it = itertools.cycle(values)
    return lambda body: reply(answer=next(it))


async def by_tenths(inputs, outputs) -> MetricResult:
    return MetricResult(score=min(outputs["answer"], 10) / 10, feedback=f"{outputs['answer']} is too low")


def fake_lm(server, cache=None, **kw):
    lm = OpenAICompatibleLM("fake-model", base_url=server.base_url, api_key=TEST_KEY, **kw)
    return lm if cache is None else CachedLM(lm, cache)


def run_module(module, inputs, lm, **ctx_kw):
    async def go():
        ctx = CallContext(lms={"default": lm}, **ctx_kw)
        try:
            return await module.acall(inputs, ctx), ctx.trace
        finally:
            close = getattr(lm, "aclose", None)
            if close is not None:
                await close()

    return asyncio.run(go())


def test_best_of_n_picks_the_highest_reward(fake_server):
    fake_server.responder = answers(1, 5, 3)
    module = BestOfN(SIG, n=3, reward=by_tenths, name="solve")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert out == {"answer": 5}
    assert len(fake_server.requests) == 3
    assert all(r.body["temperature"] == 0.7 for r in fake_server.requests)
    select = trace.for_step("solve.select")[0]
    assert select.module == "best_of_n" and select.outputs == {"scores": [0.1, 0.5, 0.3], "chosen": 1}
    assert [s.iteration for s in trace.for_step("solve.sample")] == [0, 1, 2]
    final = trace.steps[-1]
    assert (final.step, final.module, final.inputs, final.outputs, final.iteration) == (
        "solve", "best_of_n", {"question": "q"}, {"answer": 5}, None)
    assert trace.usage.calls == 3


def test_best_of_n_stops_at_the_threshold_and_ties_go_first(fake_server):
    fake_server.responder = answers(2, 6, 6, 9)
    module = BestOfN(SIG, n=4, reward=by_tenths, threshold=0.6, name="solve")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert out == {"answer": 6} and len(fake_server.requests) == 2
    assert trace.for_step("solve.select")[0].outputs == {"scores": [0.2, 0.6], "chosen": 1}

    fake_server.reset_log()
    fake_server.responder = answers(4, 4, 4)
    _, trace = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert trace.for_step("solve.select")[0].outputs["chosen"] == 0


def test_samples_have_distinct_sample_indices_and_replay_from_cache(fake_server, tmp_path):
    fake_server.responder = answers(1, 2, 3)
    module = BestOfN(SIG, n=3, reward=by_tenths, name="solve")
    with SQLiteCache(tmp_path / "cache.sqlite") as cache:
        out, _ = run_module(module, {"question": "q"}, fake_lm(fake_server, cache=cache, temperature=0.7))
        assert out == {"answer": 3} and len(cache) == 3
        again, trace = run_module(module, {"question": "q"}, fake_lm(fake_server, cache=cache, temperature=0.7))
        assert again == out and len(fake_server.requests) == 3 and trace.usage.cache_hits == 3
        # Another outer sample (e.g. a bootstrap round) draws fresh samples, not the same ones.
        run_module(module, {"question": "q"}, fake_lm(fake_server, cache=cache), sample_index=1)
        assert len(cache) == 6


def test_unparseable_samples_are_skipped_and_all_failing_raises(fake_server):
    fake_server.queue(["garbage", "more garbage", reply(answer=4)])
    module = BestOfN(SIG, n=2, reward=by_tenths, name="solve")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert out == {"answer": 4}
    assert trace.for_step("solve.select")[0].outputs == {"scores": [None, 0.4], "chosen": 1}

    fake_server.queue(["x"] * 4)
    with pytest.raises(ParseError):
        run_module(module, {"question": "q"}, fake_lm(fake_server))


def test_refine_feeds_the_feedback_into_the_next_attempt(fake_server):
    fake_server.responder = answers(3, 8, 5)
    module = Refine(SIG, n=3, reward=by_tenths, threshold=0.9, name="solve")
    out, trace = run_module(module, {"question": "What is 4 + 4?"}, fake_lm(fake_server))
    assert out == {"answer": 8}
    first, second, third = (r.body["messages"] for r in fake_server.requests)
    assert "feedback" not in first[-1]["content"]
    hint = second[-1]["content"]
    assert "[[ ## feedback ## ]]" in hint and "Previous attempt:\nanswer: 3" in hint
    assert "Feedback: 3 is too low" in hint and "(the target is 0.9)" in hint
    assert "answer: 8" in third[-1]["content"]  # each attempt hears about the one before it
    select = trace.for_step("solve.select")[0]
    assert select.module == "refine" and select.outputs["chosen"] == 1
    assert select.outputs["feedback"] == ["3 is too low", "8 is too low", "5 is too low"]
    assert trace.for_step("solve.attempt")[1].inputs["feedback"].startswith("Previous attempt")
    assert trace.steps[-1].inputs == {"question": "What is 4 + 4?"}


def test_refine_feeds_a_parse_error_back(fake_server):
    fake_server.queue(["oops", "oops again", reply(answer=9)])
    module = Refine(SIG, n=2, reward=by_tenths, threshold=0.9, name="solve")
    out, _ = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert out == {"answer": 9}
    assert "Previous attempt could not be read" in fake_server.requests[2].body["messages"][-1]["content"]


def test_multi_chain_comparison_makes_m_plus_one_calls(fake_server):
    def responder(body):
        prompt = body["messages"][-1]["content"]
        if "[[ ## attempts ## ]]" in prompt:
            return reply(rationale="Attempts 1 and 3 agree.", answer="7")
        responder.n += 1
        return reply(reasoning=f"chain {responder.n}", answer=6 + responder.n % 2)

    responder.n = 0
    fake_server.responder = responder
    module = MultiChainComparison(SIG, m=3, name="solve")
    out, trace = run_module(module, {"question": "q"}, fake_lm(fake_server))
    assert out == {"rationale": "Attempts 1 and 3 agree.", "answer": 7}
    requests = fake_server.requests
    assert len(requests) == 4
    assert len({r.body["temperature"] for r in requests[:3]}) == 1 and requests[0].body["temperature"] == 0.7
    compare = requests[3].body["messages"]
    assert "compare them" in compare[0]["content"].lower() and "Answer with a number." in compare[0]["content"]
    assert all(f"Attempt {i}:\nreasoning: chain" in compare[-1]["content"] for i in (1, 2, 3))
    assert [(s.step, s.iteration) for s in trace.steps] == [
        ("solve.sample", 0), ("solve.sample", 1), ("solve.sample", 2), ("solve.compare", None),
        ("solve", None)]
    assert [f.name for f in module.produces.outputs] == ["rationale", "answer"]


def test_offline_lm_runs_every_sampler_and_compiled_state_survives():
    demo = {"question": "What is 2 + 2?", "answer": 4}
    for module in (BestOfN(SIG, n=2, reward=by_tenths, name="solve"),
                   Refine(SIG, n=2, reward=by_tenths, threshold=0.9, name="solve"),
                   MultiChainComparison(SIG, m=2, name="solve")):
        program = GraphProgram([Step(module, {})], lms={"default": OfflineLM()})
        names = [name for name, _ in program.named_predictors()]
        assert names == {"best_of_n": ["solve"], "refine": ["solve.attempt", "solve.revise"],
                         "multi_chain_comparison": ["solve.sample", "solve.compare"]}[module.kind]
        tuned = program.with_state({name: PredictorState(instructions="Be exact.", demos=[demo]) for name in names})
        prediction = asyncio.run(tuned.acall({"question": "What is 3 + 2?"}))
        assert isinstance(prediction["answer"], int)
        first = prediction.trace.steps[0].messages
        assert "Be exact." in first[0].content and "What is 2 + 2?" in first[1].content
        assert all(p.demos == [] for p in module.predictors())
        assert module.signature.instructions == "Answer with a number."
        assert prediction.trace.steps[-1].step == "solve"
