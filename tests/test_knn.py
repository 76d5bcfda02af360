"""knn_few_shot: demos chosen per input from a compiled pool, lexically or by embedding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptc.core.adapter import ChatAdapter
from promptc.core.demo_select import DemoSelector, LexicalIndex
from promptc.core.modules import Predict
from tests.conftest import ROOT, TEST_KEY, run_cli

POOL = [
    {"message": "I lost my credit card yesterday", "intent": "card_lost"},
    {"message": "Please refund my last order", "intent": "refund_request"},
    {"message": "You charged me twice for one purchase", "intent": "double_charge"},
    {"message": "I forgot my password and cannot log in", "intent": "password_reset"},
    {"message": "My parcel delivery is late by a week", "intent": "delivery_late"},
    {"message": "What is the exchange rate for euros", "intent": "exchange_rate"},
]


def shown_messages(messages) -> list[str]:
    return [m.content for m in messages if m.role == "user"][:-1]


def test_selection_differs_by_input_and_is_deterministic():
    selector = DemoSelector(k=2, pool=POOL, keys=["message"])
    card = selector.select({"message": "my card was stolen, I lost it"})
    refund = selector.select({"message": "I want a refund for the order"})
    assert card[-1]["intent"] == "card_lost"  # the most similar demo comes last
    assert refund[-1]["intent"] == "refund_request"
    assert card != refund and len(card) == len(refund) == 2
    assert selector.select({"message": "my card was stolen, I lost it"}) == card
    # Inputs that match nothing (placeholders) get the first k of the pool: the static view.
    assert selector.select({"message": "{message}"}) == list(reversed(selector.static_demos()))
    assert len(DemoSelector(k=10, pool=POOL[:3], keys=["message"]).select({"message": "x"})) == 3


def test_diversity_trades_similarity_for_variety():
    pool = [*POOL, {"message": "I lost my card, my credit card is lost", "intent": "card_lost"}]
    query = {"message": "I lost my card"}
    nearest = DemoSelector(k=2, pool=pool, keys=["message"]).select(query)
    varied = DemoSelector(k=2, pool=pool, keys=["message"], diversity=0.5).select(query)
    assert [d["intent"] for d in nearest] == ["card_lost", "card_lost"]
    assert varied[-1]["intent"] == "card_lost" and varied[0]["intent"] != "card_lost"


def test_predict_renders_the_nearest_demos_for_each_call():
    predictor = Predict("message -> intent", selector=DemoSelector(k=1, pool=POOL, keys=["message"]))
    late = shown_messages(predictor.render({"message": "where is my late delivery"}, ChatAdapter()))
    rate = shown_messages(predictor.render({"message": "euros exchange rate today"}, ChatAdapter()))
    assert len(late) == len(rate) == 1
    assert "parcel delivery" in late[0] and "exchange rate" in rate[0]


def test_bm25_prefers_rare_words():
    index = LexicalIndex(["the card the the", "the refund", "the order"])
    scores = index.scores("the refund")
    assert scores.index(max(scores)) == 1


def test_embedding_selection_uses_the_run_embedder():
    import asyncio

    class Embedder:
        model = "toy"
        calls: list[list[str]] = []

        async def embed(self, texts):
            self.calls.append(list(texts))
            return [[1.0, 0.0] if "card" in t else [0.0, 1.0] for t in texts]

    embedder = Embedder()
    pool = POOL[:2]
    selector = DemoSelector(k=1, pool=pool, keys=["message"], similarity="embedding",
                            vectors=[[1.0, 0.0], [0.0, 1.0]])
    picked = asyncio.run(selector.aselect({"message": "card please"}, {"default": embedder}))
    assert picked == [pool[0]] and embedder.calls == [["card please"]]
    from promptc.errors import UsageError

    with pytest.raises(UsageError, match="embedder"):
        asyncio.run(selector.aselect({"message": "x"}, {}))


def copy_specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    for path in (ROOT / "specs").iterdir():
        text = path.read_text().replace("../datasets", str(ROOT / "datasets"))
        (folder / path.name).write_text(text)
    return folder


DATA = {"intent": "intent", "support_reply": "intent", "triage": "triage", "multihop_rag": "multihop",
        "agent": "agent", "multihop_module": "multihop"}


@pytest.mark.parametrize("name", list(DATA))
def test_compile_offline_then_use_the_artifact_without_the_spec(name, tmp_path):
    specs = copy_specs(tmp_path)
    spec = specs / f"{name}.yaml"
    out = tmp_path / "build"
    train = ROOT / f"datasets/{DATA[name]}/train.jsonl"
    dev = ROOT / f"datasets/{DATA[name]}/dev.jsonl"
    result = run_cli("compile", str(spec), "--train", str(train), "--dev", str(dev), "--out", str(out),
                     "--optimizer", "knn_few_shot", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "compiled without scoring on dev" in result.stdout
    artifact = json.loads((out / "program.json").read_text())
    selectors = [p["selector"] for p in artifact["predictors"] if p["selector"]]
    assert all(s["pool"] and s["similarity"] == "lexical" for s in selectors)
    # Multihop and agent: no offline run passes and the rows lack the inner inputs
    # (`context`, `trajectory`), so no demo fits; those predictors keep their demos.
    assert selectors or name in ("multihop_rag", "multihop_module", "agent")
    trials = [json.loads(x) for x in (out / "trials.jsonl").read_text().splitlines()]
    assert [t["kind"] for t in trials] == ["knn"] and trials[0]["score"] is None
    spec.unlink()  # the artifact alone from here on
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(dev.read_text().splitlines(keepends=True)[:4]))
    ran = run_cli("run", "--program", str(out), "-i", str(rows), "-o", str(tmp_path / "o.jsonl"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    if name != "support_reply":  # no dataset has its `reply`/`escalate` labels
        evaluated = run_cli("eval", "--program", str(out), "--data", str(rows), cwd=tmp_path)
        assert evaluated.returncode in (0, 1), evaluated.stderr
    exported = run_cli("export", str(out), "--format", "openai-messages", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert any("per input" in note for note in manifest["notes"]) == bool(selectors)
    step = json.loads(next(p for p in (tmp_path / "x").glob("*.json") if p.name != "manifest.json").read_text())
    if "demo_selection" in step:
        assert step["demo_selection"]["pool"] and step["demo_selection"]["k"] >= 1


def test_compiled_program_picks_demos_per_input(tmp_path):
    import promptc

    specs = copy_specs(tmp_path)
    result = promptc.compile(specs / "intent.yaml", optimizer="knn_few_shot", settings={"k": 3},
                             out=tmp_path / "build")
    assert result.best is not None and result.best.score is None
    with promptc.load_program(tmp_path / "build") as loaded:
        a = loaded(message="I lost my card at the station")
        b = loaded(message="How much is the dollar to euro exchange rate?")
    demos_a, demos_b = (shown_messages(p.trace.steps[0].messages) for p in (a, b))
    assert len(demos_a) == len(demos_b) == 3 and demos_a != demos_b


def embedder_spec(tmp_path: Path, server_url: str, optimizer: str = "{name: knn_few_shot, k: 3}") -> Path:
    text = (ROOT / "specs/intent.yaml").read_text().split("\noptimizer:")[0].replace("../datasets", str(ROOT / "datasets"))
    text += (f'\nembedder: {{model: fake-embed, base_url: "{server_url}", api_key_env: PROMPTC_TEST_KEY, '
             f'batch_size: 16}}\noptimizer: {optimizer}\n')
    spec = tmp_path / "intent.yaml"
    spec.write_text(text)
    return spec


def test_embeddings_through_the_fake_server(tmp_path, fake_server):
    spec = embedder_spec(tmp_path, fake_server.base_url)
    env = {"PROMPTC_TEST_KEY": TEST_KEY}
    out = tmp_path / "build"
    result = run_cli("compile", str(spec), "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    embeds = [r for r in fake_server.requests if r.path == "/v1/embeddings"]
    pool = json.loads((out / "program.json").read_text())["predictors"][0]["selector"]
    assert pool["similarity"] == "embedding" and len(pool["vectors"]) == len(pool["pool"])
    assert len(embeds) == -(-len(pool["pool"]) // 16)  # the pool, once, in batches
    trial = json.loads((out / "trials.jsonl").read_text().splitlines()[0])
    assert trial["params"]["embedding_requests"] == len(embeds)
    assert embeds[0].header("authorization") == f"Bearer {TEST_KEY}"
    fake_server.reset_log()
    spec.rename(tmp_path / "moved.yaml")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join((ROOT / "datasets/intent/dev.jsonl").read_text().splitlines(keepends=True)[:5]))
    ran = run_cli("run", "--program", str(out), "-i", str(rows), "-o", str(tmp_path / "o.jsonl"), env=env)
    assert ran.returncode == 0, ran.stderr
    texts = [t for r in fake_server.requests for t in r.body["input"]]
    assert len(texts) == 5 and all(r.path == "/v1/embeddings" for r in fake_server.requests)  # inputs only
    fake_server.reset_log()
    again = run_cli("run", "--program", str(out), "-i", str(rows), "-o", str(tmp_path / "o.jsonl"),
                    "--overwrite", env=env)
    assert again.returncode == 0 and fake_server.request_count == 0  # embeddings come from the cache


def test_budget_stops_cleanly_and_keeps_a_labelled_pool(tmp_path):
    specs = copy_specs(tmp_path)
    out = tmp_path / "build"
    result = run_cli("compile", str(specs / "intent.yaml"), "--optimizer", "knn_few_shot", "--out", str(out),
                     "--max-calls", "5")
    assert result.returncode == 0, result.stderr
    assert "stopped early" in result.stderr
    artifact = json.loads((out / "program.json").read_text())
    assert "5" in artifact["provenance"]["stopped_early"]
    assert artifact["predictors"][0]["selector"]["pool"]  # labelled demos stand in
    resumed = run_cli("compile", str(specs / "intent.yaml"), "--optimizer", "knn_few_shot", "--out", str(out),
                      "--resume")
    assert resumed.returncode == 0 and "stopped early" not in resumed.stderr  # the cut trial is redone
    assert json.loads((out / "program.json").read_text())["provenance"]["stopped_early"] is None


def test_kill_and_resume_without_redoing_the_pool(tmp_path, fake_server):
    fake_server.latency = 0.03
    lm = f'lm: {{model: fake-model, base_url: "{fake_server.base_url}", api_key_env: PROMPTC_TEST_KEY, concurrency: 2}}\n'
    spec = embedder_spec(tmp_path, fake_server.base_url, "{name: knn_few_shot, score_dev: true}")
    spec.write_text(spec.read_text().replace("version: 1\n", "version: 1\n" + lm))
    env = {**os.environ, "PROMPTC_TEST_KEY": TEST_KEY}
    out = tmp_path / "build"
    args = [sys.executable, "-m", "promptc", "compile", str(spec), "--out", str(out), "--no-cache"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trials = out / "trials.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not trials.exists() or not trials.read_text().strip()):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert [json.loads(x)["index"] for x in trials.read_text().splitlines()] == [0]
    fake_server.reset_log()
    resumed = run_cli("compile", str(spec), "--out", str(out), "--resume", "--no-cache",
                      env={"PROMPTC_TEST_KEY": TEST_KEY})
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 1 finished trial(s)" in resumed.stderr
    assert [json.loads(x)["index"] for x in trials.read_text().splitlines()] == [0, 1]
    # Only trial 1 ran: dev rows scored zero-shot, no bootstrapping and no pool embedding.
    dev_rows = len((ROOT / "datasets/intent/dev.jsonl").read_text().splitlines())
    chats = [r for r in fake_server.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == dev_rows
    assert not any(r.path.endswith("/embeddings") for r in fake_server.requests)


def test_settings_are_checked(tmp_path):
    planned = run_cli("compile", "specs/intent.yaml", "--optimizer", "knn_few_shot", "--dry-run")
    assert planned.returncode == 0 and "knn_few_shot" in planned.stdout
    specs = copy_specs(tmp_path)
    text = (specs / "intent.yaml").read_text().split("\noptimizer:")[0]
    for optimizer, message in (("{name: knn_few_shot, kk: 3}", "optimizer.kk: unknown setting"),
                               ("{name: knn_few_shot, similarity: embedding}", "has no `embedder:`")):
        (specs / "intent.yaml").write_text(text + f"\noptimizer: {optimizer}\n")
        bad = run_cli("compile", str(specs / "intent.yaml"), "--out", str(tmp_path / "b"))
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
