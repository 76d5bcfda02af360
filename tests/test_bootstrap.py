"""bootstrap: the teacher sees labelled training demos, never the row it is running on."""

from __future__ import annotations

import asyncio
import random

import pytest

from promptc.lm.base import LMRequest, LMResponse
from promptc.lm.offline import OfflineLM
from promptc.metrics.config import build_metrics, parse_metric
from promptc.optimize.base import examples_from_rows
from promptc.optimize.bootstrap import Bootstrapped, bootstrap
from promptc.spec.loader import load_text
from tests.test_demo_race import SPEC

ROWS = [{"ticket": "I was charged twice for my lamp", "team": "billing"},
        {"ticket": "Where is my kettle? It still has not arrived", "team": "shipping"},
        {"ticket": "The jacket is broken, can I send it back?", "team": "returns"},
        {"ticket": "Why is there an extra fee on my invoice?", "team": "billing"},
        {"ticket": "The courier never delivered my backpack", "team": "shipping"},
        {"ticket": "How do I get my money back for the headphones?", "team": "returns"}]


class RecordingLM:
    """The offline LM, keeping every request."""

    model = "offline"

    def __init__(self) -> None:
        self.inner = OfflineLM()
        self.requests: list[LMRequest] = []

    async def complete(self, request: LMRequest) -> LMResponse:
        self.requests.append(request)
        return await self.inner.complete(request)


def run(rows: list[dict], teacher_demos: int, seed: int = 0) -> tuple[RecordingLM, Bootstrapped]:
    lm = RecordingLM()
    program = load_text(SPEC, lms={"default": lm}).program
    metric = build_metrics([parse_metric(type="label_accuracy", field="team")], default_field="team")[0]
    out = asyncio.run(bootstrap(program, examples_from_rows(rows, ["ticket"]), metric, max_demos=len(rows),
                                teacher_demos=teacher_demos, rng=random.Random(seed)))
    assert program.state()["route"].demos == []
    return lm, out


def shown_and_running(request: LMRequest) -> tuple[dict[str, str], str]:
    """The demos in the prompt (ticket -> the team it shows), and the ticket being answered."""
    tickets = [m.content.split("[[ ## ticket ## ]]\n")[1].split("\n\n")[0]
               for m in request.messages if m.role == "user"]
    teams = [m.content.split("[[ ## team ## ]]\n")[1].split("\n")[0]
             for m in request.messages if m.role == "assistant"]
    return dict(zip(tickets[:-1], teams, strict=True)), tickets[-1]


@pytest.mark.parametrize(("rows", "seed"), [(ROWS[:3], 0), (ROWS, 0), (ROWS, 1)])
def test_the_teacher_never_sees_the_row_it_runs(rows, seed):
    lm, out = run(rows, teacher_demos=2, seed=seed)
    assert len(lm.requests) == out.attempted == len(rows)
    gold = {r["ticket"]: r["team"] for r in rows}
    for request in lm.requests:
        shown, running = shown_and_running(request)
        assert len(shown) == 2 and running not in shown
        assert shown == {ticket: gold[ticket] for ticket in shown}
        if len(rows) == 3:
            assert set(shown) == set(gold) - {running}


def test_bootstrapped_demos_are_the_runs_own_rows():
    _, out = run(ROWS, teacher_demos=2)
    assert out.used
    assert [d["ticket"] for d in out.demos["route"]] == [ROWS[i]["ticket"] for i in sorted(out.used)]
    assert all(d["team"] == ROWS[i]["team"] for d, i in zip(out.demos["route"], sorted(out.used), strict=True))


def test_without_teacher_demos_the_prompt_has_none():
    lm, _ = run(ROWS, teacher_demos=0)
    assert all(shown_and_running(r)[0] == {} for r in lm.requests)
