"""knn_few_shot: demos chosen per input, from a pool built at compile time.

After DSPy's KNNFewShot and Liu et al. 2021 ("What Makes Good In-Context Examples for
GPT-3?"): the demos most similar to the input at hand help more than one fixed set.

Compile builds, for every predictor, a pool of demos:

1. bootstrapped (promptc.optimize.bootstrap): the program (or its `teacher` LM) runs on
   training rows, in a seeded order, until `pool_size` runs pass the metric; every passing
   run gives a demo to every predictor that ran, chain-of-thought reasoning included;
2. topped up with labelled training rows only for a predictor that got no bootstrapped
   demo (e.g. a branch no passing run took, or a budget that ran out first);
3. embedded once, when similarity is by embedding (the spec's `embedder:`), so the
   vectors travel with the pool in program.json and runs never re-embed it.

Each predictor then holds a `DemoSelector` (promptc.core.demo_select): at every call it
shows the `k` pool demos nearest the call's inputs. The pool is the product, so dev is
not scored unless `score_dev: true` (then the zero-shot program is scored too and the
better one is kept). Trials: 0 builds the pool (logged unscored, or scored with
`score_dev`), 1 is zero-shot (only with `score_dev`).

Cost: about `pool_size / pass rate` program runs (each as many LM calls as the program
makes per row), plus one embeddings request per `batch_size` pool texts per predictor;
at run time one embeddings request per call of a tuned predictor (cached).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import BaseModel, Field

from promptc.core.demo_select import DemoSelector
from promptc.core.program import PredictorState, Program
from promptc.errors import BudgetExhausted, UsageError
from promptc.optimize.base import CompileContext, ready
from promptc.optimize.bootstrap import Bootstrapped, bootstrap, labeled_demo


class KNNFewShot:
    """A per-predictor pool of bootstrapped demos; each call shows the k nearest its inputs."""

    name = "knn_few_shot"

    class Settings(BaseModel):
        model_config = {"extra": "forbid"}

        k: int = Field(default=12, ge=1, le=64, description="demos per call")
        pool_size: int = Field(default=24, ge=1, description="passing training runs to bootstrap demos from")
        max_rounds: int = Field(default=1, ge=1, le=10)
        metric_threshold: float | None = None  # default: the metric's own pass threshold
        diversity: float = Field(default=0.0, ge=0.0, le=1.0,
                                 description="MMR trade-off: 0 the k nearest, higher more varied demos")
        similarity: Literal["auto", "lexical", "embedding"] = Field(
            default="auto", description="auto: embedding when the spec has an `embedder:`, else lexical")
        score_dev: bool = Field(default=False, description="score the result (and zero-shot) on dev")

    def __init__(self, **settings: Any):
        self.settings = self.Settings(**settings)

    def planned_calls(self, ctx: CompileContext) -> int:
        s, per_row = self.settings, ctx.program.calls_per_row()
        boot = min(len(ctx.trainset), 2 * s.pool_size) * s.max_rounds * per_row
        return boot + (2 * len(ctx.devset) * per_row if s.score_dev else 0)

    async def compile(self, ctx: CompileContext) -> Program:
        s = self.settings
        ctx.plan_trials(2 if s.score_dev else 1)
        embedder = self._embedder(ctx)
        params: dict[str, Any] = {**s.model_dump(), "similarity": "embedding" if embedder else "lexical"}
        stopped: list[str] = []

        async def build() -> Program:
            order = random.Random(ctx.seed).sample(ctx.trainset, len(ctx.trainset))
            try:
                boot = await bootstrap(ctx.program, order, ctx.metric, max_demos=s.pool_size,
                                       max_rounds=s.max_rounds, threshold=s.metric_threshold,
                                       concurrency=ctx.concurrency, lms=ctx.teacher_lms)
            except BudgetExhausted as exc:  # no run passed before the budget ran out
                boot, stopped[:] = Bootstrapped(), [str(exc)]
            if not stopped and len(boot.used) < s.pool_size:
                try:
                    ctx.budget.check()  # bootstrap keeps a partial pool quietly: say so
                except BudgetExhausted as exc:
                    stopped[:] = [str(exc)]
            if stopped:
                params["stopped_early"] = stopped[0]
            ctx.traces.extend(boot.traces)
            params["bootstrapped"], params["attempted"] = len(boot.used), boot.attempted
            before = _embed_requests(embedder)
            state = await pools(ctx.program, boot, order, k=s.k, pool_size=s.pool_size, embedder=embedder,
                                diversity=s.diversity)
            if embedder is not None:  # not LM calls: reported here, outside the trial's usage
                params["embedding_requests"] = _embed_requests(embedder) - before
            params["pool"] = {name: len(st.selector.pool) if st.selector else 0 for name, st in state.items()}
            return ctx.program.with_state(state)

        how = params["similarity"]
        pool = await ctx.trial(0, "knn", build, params=params, scored=s.score_dev,
                               description=f"{s.k} nearest of a pool from up to {s.pool_size} "
                               f"bootstrapped runs ({how})")
        if pool.params.get("stopped_early"):
            raise BudgetExhausted(pool.params["stopped_early"])  # the job keeps trial 0 and reports it
        if s.score_dev:
            await ctx.trial(1, "zero_shot", ready(ctx.program), description="the spec as written")
        best = ctx.log.best()
        return ctx.program.with_state((best or pool).state)

    def _embedder(self, ctx: CompileContext) -> Any:
        similarity = self.settings.similarity
        embedder = ctx.program.embedders.get("default")
        if similarity == "embedding" and embedder is None:
            raise UsageError("optimizer.similarity is `embedding` but the spec has no `embedder:` "
                             "(e.g. `embedder: {model: text-embedding-3-small}`)")
        return None if similarity == "lexical" else embedder


async def pools(program: Program, boot: Bootstrapped, trainset: list[Any], *, k: int, pool_size: int,
                embedder: Any = None, diversity: float = 0.0) -> dict[str, PredictorState]:
    """Every predictor's DemoSelector: its bootstrapped demos, else up to `pool_size` labelled
    ones; with `embedder`, the pool's vectors too."""
    state = program.state()
    for name, current in state.items():
        predictor = program.predictor(name)
        pool = list(boot.demos.get(name, []))
        if not pool:
            pool = [d for ex in trainset if (d := labeled_demo(program, name, ex)) is not None][:pool_size]
        if not pool:
            continue  # nothing fits this predictor: it keeps its demos
        keys = [f.name for f in predictor.signature.inputs if any(f.name in d for d in pool)]
        selector = DemoSelector(k=k, pool=pool, keys=keys, diversity=diversity)
        texts = selector.pool_texts()
        if embedder is not None and all(t.strip() for t in texts):  # else lexical: nothing to embed
            selector.vectors = await embedder.embed(texts)
            selector.similarity = "embedding"
        state[name] = PredictorState(instructions=current.instructions, demos=[], selector=selector)
    return state


def _embed_requests(embedder: Any) -> int:
    usage = getattr(embedder, "usage", None) if embedder is not None else None
    return int(getattr(usage, "requests", 0) or 0)

