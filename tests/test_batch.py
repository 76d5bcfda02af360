"""The batch engine under exceptions: every row ends as a result or the batch fails cleanly.

`execute` is called directly with a one-step program on an in-process LM that answers at
once. Each call runs under `asyncio.wait_for(..., timeout=1)`, so a hang fails the test
instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import gc
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from promptc.core.program import Program
from promptc.errors import LMAuthError, OutputError, UsageError
from promptc.lm.base import LMRequest, LMResponse, Usage
from promptc.runner.batch import BatchStats, RowResult, WorkItem, execute
from promptc.spec.loader import load_text

SPEC = """
version: 1
name: echo
signatures:
  answer:
    instructions: Answer with the number in the question.
    inputs: {question: str}
    outputs: {answer: float}
program:
  - step: answer
    signature: answer
"""

SIZES = [20, 200]
CONCURRENCY = [1, 16]


def positions(n: int) -> list[int]:
    """Where to fail: the first row, row 3, the last row."""
    return [0, 3, n - 1]


CASES = [(n, at, c) for n in SIZES for at in positions(n) for c in CONCURRENCY]


def items(n: int) -> list[WorkItem]:
    return [WorkItem(row=i, inputs={"question": f"What is {i} plus zero?"}) for i in range(n)]


def run(coro_fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run `coro_fn()` with a 1 s limit; fail on leftover tasks and on lost task exceptions."""
    lost: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: lost.append(ctx))
        try:
            return await asyncio.wait_for(coro_fn(), timeout=1)
        finally:
            assert asyncio.all_tasks() == {asyncio.current_task()}, "a task outlived execute"
            gc.collect()  # a task whose exception nobody retrieved reports it when collected
            assert not lost, f"unhandled in the event loop: {lost}"

    return asyncio.run(main())


class QuickLM:
    """Replies with the number in the question, or a 401 for the question of row `fail_at`.

    Not the offline LM: its nearest-neighbour parsing costs milliseconds a row, and 200
    rows must finish well inside the 1 s limit on a busy machine.
    """

    model = "quick"

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at

    async def complete(self, request: LMRequest) -> LMResponse:
        number = re.findall(r"What is (\d+) plus zero", request.messages[-1].content)[-1]
        if int(number) == self.fail_at:
            raise LMAuthError("HTTP 401: bad key", status=401)
        text = f"[[ ## answer ## ]]\n{number}\n\n[[ ## completed ## ]]"
        return LMResponse(text=text, usage=Usage(calls=1), model=self.model)


@pytest.fixture(scope="module")
def program() -> Program:
    return load_text(SPEC, lms={"default": QuickLM()}).program


@pytest.mark.parametrize("n, at, concurrency", CASES)
def test_raising_post_makes_that_row_an_error(program: Program, n: int, at: int,
                                              concurrency: int) -> None:
    emitted: list[RowResult] = []

    async def post(result: RowResult) -> float:
        if result.item.row == at:
            raise ValueError("metric blew up")
        return 1.0

    stats = run(lambda: execute(program, items(n), emitted.append, concurrency=concurrency,
                                post=post))
    assert [r.item.row for r in emitted] == list(range(n))  # every row, in input order
    bad = emitted[at]
    assert bad.error == "metric failed: ValueError: metric blew up" and bad.extra is None
    assert all(r.ok and r.extra == 1.0 for r in emitted if r.item.row != at)
    assert (stats.done, stats.failed) == (n, 1)


@pytest.mark.parametrize("n, at, concurrency", CASES)
def test_raising_sink_stops_the_batch_keeping_what_was_written(program: Program, n: int, at: int,
                                                               concurrency: int) -> None:
    written: list[int] = []

    def sink(result: RowResult) -> None:
        if result.item.row == at:
            raise OSError(28, "No space left on device")
        written.append(result.item.row)

    with pytest.raises(OutputError, match=f"row {at}: OSError: .*No space left") as caught:
        run(lambda: execute(program, items(n), sink, concurrency=concurrency))
    assert caught.value.row == at and isinstance(caught.value.__cause__, OSError)
    assert written == list(range(at))  # a prefix, in order; nothing after the failure


def test_a_sinks_own_promptc_error_is_raised_as_it_is(program: Program) -> None:
    def sink(result: RowResult) -> None:
        raise UsageError("refusing to write")

    with pytest.raises(UsageError, match="refusing to write"):
        run(lambda: execute(program, items(20), sink, concurrency=4))


@pytest.mark.parametrize("concurrency", CONCURRENCY)
@pytest.mark.parametrize("in_post", [False, True], ids=["program", "post"])
def test_a_fatal_lm_error_stops_the_batch(program: Program, concurrency: int,
                                          in_post: bool) -> None:
    written: list[int] = []
    failing = load_text(SPEC, lms={"default": QuickLM(fail_at=3)}).program

    async def post(result: RowResult) -> None:  # e.g. an LM judge with a revoked key
        if result.item.row == 3:
            raise LMAuthError("HTTP 401: bad judge key", status=401)

    with pytest.raises(LMAuthError):
        run(lambda: execute(program if in_post else failing, items(200),
                            lambda r: written.append(r.item.row), concurrency=concurrency,
                            post=post if in_post else None))
    assert written == list(range(len(written))) and len(written) <= 3


def test_a_failing_progress_callback_stops_the_batch(program: Program) -> None:
    def on_update(stats: BatchStats) -> None:
        if stats.done == 5:
            raise RuntimeError("display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        run(lambda: execute(program, items(200), lambda r: None, concurrency=16,
                            on_update=on_update))


def test_an_error_reading_the_rows_cancels_the_running_ones(program: Program) -> None:
    def rows() -> Any:
        yield from items(10)
        raise UsageError("bad input line 11")

    with pytest.raises(UsageError, match="line 11"):
        run(lambda: execute(program, rows(), lambda r: None, concurrency=16))
