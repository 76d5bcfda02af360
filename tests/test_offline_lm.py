"""The offline LM: reads adapter prompts, answers every type, and learns from demos."""

from __future__ import annotations

import ast
import asyncio
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from promptc.core.adapter import ChatAdapter
from promptc.core.signature import Signature
from promptc.lm.base import LM, LMRequest, Message
from promptc.lm.offline import OfflineLM, complete_messages

ADAPTER = ChatAdapter()
ALL_TYPES = Signature.parse(
    "question, context: list[str] -> reasoning, label: Literal['alpha', 'beta_gamma'], "
    "score: float, count: int, ok: bool, tags: list[str], nums: list[int], data: json, answer"
)
DEMO = {"question": "How many apples are on the table?", "context": ["There are 3 apples."],
        "reasoning": "Count them.", "label": "beta_gamma", "score": 0.5, "count": 3, "ok": True,
        "tags": ["apples"], "nums": [3], "data": {"k": [1, 2]}, "answer": "three apples"}
QUERY = {"question": "How many pears are on the table?",
         "context": ["The kitchen is warm.", "Somebody put 4 pears and 2.5 kg of rice there."]}


def ask(sig: Signature, inputs: dict, demos: list[dict] = (), json_mode: bool = False,
        response_format: dict | None = None) -> str:
    messages = ADAPTER.format(sig, inputs=inputs, demos=demos, json_mode=json_mode)
    return complete_messages([m.model_dump() for m in messages], response_format)


def predict(sig: Signature, inputs: dict, demos: list[dict] = (), **kw) -> dict:
    return ADAPTER.parse(sig, ask(sig, inputs, demos, **kw))


# -- every type parses, in both formats ------------------------------------------------
@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize("demos", [[], [DEMO]], ids=["zero-shot", "one-demo"])
def test_every_field_type_parses(json_mode: bool, demos: list[dict]) -> None:
    out = predict(ALL_TYPES, QUERY, demos, json_mode=json_mode)
    assert list(out) == ALL_TYPES.output_names
    assert out["label"] in ("alpha", "beta_gamma")
    assert isinstance(out["score"], float) and isinstance(out["count"], int)
    assert isinstance(out["ok"], bool) and isinstance(out["tags"], list)
    assert all(isinstance(n, int) for n in out["nums"])
    if demos:
        assert out["answer"] == "three apples" and out["data"] == {"k": [1, 2]}
        assert out["count"] == 3 and out["ok"] is True and out["label"] == "beta_gamma"


def test_zero_shot_values_come_from_the_inputs() -> None:
    out = predict(ALL_TYPES, QUERY)
    assert out["score"] == 2.5  # the last number mentioned
    assert out["count"] == 3  # 2.5 rounded half up
    assert out["ok"] is False
    assert out["nums"] == [4, 3]
    assert out["tags"] and all(t in " ".join(QUERY["context"] + [QUERY["question"]]) for t in out["tags"])
    assert out["data"] == {}
    assert out["answer"] == "Somebody put 4 pears and 2.5 kg of rice there."  # shares "pears"
    assert out["reasoning"] == "No demonstrations; answering from the inputs."


def test_zero_shot_json_follows_the_schema() -> None:
    sig = Signature.parse("text -> record: json")
    schema = {"type": "object", "required": ["name", "tags", "age", "kind"],
              "properties": {"name": {"type": "string", "minLength": 1}, "age": {"type": "integer", "minimum": 18},
                             "tags": {"type": "array", "items": {"type": "string"}},
                             "kind": {"enum": ["x", "y"]}}}
    typed = sig.model_copy(update={"outputs": (sig.outputs[0].model_copy(
        update={"type": sig.outputs[0].type.model_copy(update={"json_schema": schema})}),)})
    assert predict(typed, {"text": "hello"})["record"] == {"name": "x", "tags": [], "age": 18, "kind": "x"}


def test_single_input_str_is_the_lead_sentence_truncated() -> None:
    sig = Signature.parse("text -> summary")
    long = "word " * 80
    assert predict(sig, {"text": "First thing. Second thing."})["summary"] == "First thing."
    out = predict(sig, {"text": long})["summary"]
    assert len(out) <= 204 and out.endswith("...")


# -- enums ---------------------------------------------------------------------------
def test_enum_answers_are_always_allowed_values() -> None:
    sig = Signature.parse("text -> label: Literal['spam', 'ham', 'not sure']")
    rng = random.Random(0)
    words = "spam ham eggs buy now free money meeting notes sure not lunch".split()
    bad_demos = [{"text": "buy now", "label": "SPAM"}, {"text": "free money", "label": "phishing"},
                 {"text": "lunch notes", "label": "ham"}]
    for _ in range(60):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        demos = rng.sample(bad_demos, rng.randint(0, 3))
        for json_mode in (False, True):
            assert predict(sig, {"text": text}, demos, json_mode=json_mode)["label"] in ("spam", "ham", "not sure")


def test_zero_shot_enum_matches_label_names_then_order() -> None:
    sig = Signature.parse("text -> intent: Literal['check_balance', 'lostCard', 'book-flight']")
    assert predict(sig, {"text": "I lost my card"})["intent"] == "lostCard"
    assert predict(sig, {"text": "Any flights to Rome?"})["intent"] == "book-flight"
    assert predict(sig, {"text": "zzz"})["intent"] == "check_balance"


def test_demos_change_outputs() -> None:
    sig = Signature.parse("review -> sentiment: Literal['positive', 'negative'], stars: int")
    query = {"review": "The battery died after 2 days, awful."}
    assert predict(sig, query) == {"sentiment": "positive", "stars": 2}
    demos = [{"review": "Loved it, works great.", "sentiment": "positive", "stars": 5},
             {"review": "Awful battery, died in a day.", "sentiment": "negative", "stars": 1}]
    assert predict(sig, query, demos) == {"sentiment": "negative", "stars": 1}
    reasoning = Signature.parse("review -> reasoning, sentiment: Literal['positive', 'negative']")
    text = predict(reasoning, query, demos)["reasoning"]
    assert "Awful battery" in text and "[[" not in text and "##" not in text


# -- learning from demos on a classification task ---------------------------------------
INTENTS = {
    "check_balance": ["how much is in my {acct}", "what is the balance of my {acct}",
                      "show me what is left in my {acct}", "do I have enough in my {acct} for {thing}",
                      "how much money do I have in {acct}"],
    "transfer_money": ["send {amt} to {person}", "move {amt} from savings to {person}",
                       "wire {amt} to {person}", "pay {person} back {amt}", "transfer {amt} to {person}"],
    "lost_card": ["I lost my {card}", "my {card} was stolen", "I can't find my {card} anywhere",
                  "please block my {card}, it is missing", "someone took my wallet with my {card}"],
    "cancel_subscription": ["cancel my {svc} subscription", "stop the monthly {svc} plan",
                            "I want to unsubscribe from {svc}", "end my {svc} membership",
                            "no more {svc} charges every month"],
    "book_flight": ["book a flight to {city}", "I need a plane ticket to {city} {when}",
                    "find me flights to {city}", "reserve a seat on a plane to {city} {when}",
                    "get me to {city} by air {when}"],
}
SLOTS = {"acct": ["checking account", "savings", "account", "joint account"],
         "thing": ["rent", "groceries", "a new laptop"], "amt": ["50 dollars", "$200", "some money"],
         "person": ["my brother", "my landlord", "a friend", "mom"],
         "card": ["debit card", "credit card", "card", "bank card"],
         "svc": ["music", "streaming", "premium", "gym"], "city": ["Paris", "Tokyo", "Boston", "Lima"],
         "when": ["tomorrow", "next week", "on Friday"]}
FILLER = (["", "hi, ", "hello there, ", "please ", "can you help: ", "quick question, ", "ok so "],
          ["", " today", " right now", " thanks", " asap", "?", " please"])
INTENT_SIG = Signature.parse("text -> intent: Literal[" + ", ".join(repr(i) for i in INTENTS) + "]")


def intent_examples(seed: int, per_intent: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(per_intent):
        for intent, templates in INTENTS.items():
            text = rng.choice(templates)
            for slot, options in SLOTS.items():
                text = text.replace("{" + slot + "}", rng.choice(options))
            rows.append({"text": rng.choice(FILLER[0]) + text + rng.choice(FILLER[1]), "intent": intent})
    rng.shuffle(rows)
    return rows


def accuracy(demos: list[dict], test: list[dict]) -> float:
    hits = sum(predict(INTENT_SIG, {"text": r["text"]}, demos)["intent"] == r["intent"] for r in test)
    return hits / len(test)


def test_labelled_demos_beat_zero_shot_on_intent_classification() -> None:
    test = intent_examples(seed=999, per_intent=20)
    zero = accuracy([], test)
    # Unstratified draws, as a demo optimizer would make: some intents may have no demo.
    few = [accuracy(intent_examples(seed, 10)[:8], test) for seed in range(4)]
    more = [accuracy(intent_examples(seed, 10)[:16], test) for seed in range(4)]
    few_mean, more_mean = sum(few) / len(few), sum(more) / len(more)
    print(f"intent accuracy: zero-shot {zero:.3f}, 8 demos {few_mean:.3f}, 16 demos {more_mean:.3f}")
    assert few_mean >= zero + 0.08
    assert more_mean >= few_mean + 0.03
    assert min(more) > zero + 0.1


# -- JSON mode, re-asks, foreign prompts -----------------------------------------------------
def test_json_mode_from_response_format_or_system_prompt() -> None:
    sig = Signature.parse("question -> answer, confidence: float, ok: bool")
    for kw in ({"json_mode": True}, {"response_format": ADAPTER.response_format(sig)}):
        reply = ask(sig, {"question": "Is 7 prime?"}, **kw)
        obj = json.loads(reply)
        assert list(obj) == ["answer", "confidence", "ok"]
        assert obj["confidence"] == 7.0 and obj["ok"] is False
        assert ADAPTER.parse(sig, reply)["answer"] == "Is 7 prime?"
    demo = {"question": "Is 4 prime?", "answer": "no", "confidence": 0.9, "ok": True}
    assert json.loads(ask(sig, {"question": "Is 9 prime?"}, [demo], json_mode=True)) == \
        {"answer": "no", "confidence": 0.9, "ok": True}


def test_reask_answers_the_original_request_again() -> None:
    messages = ADAPTER.format(ALL_TYPES, inputs=QUERY, demos=[DEMO])
    first = complete_messages([m.model_dump() for m in messages])
    again = ADAPTER.reask(messages, "garbage", "missing output field(s) `label`", ALL_TYPES)
    twice = ADAPTER.reask(again, "more garbage", "still missing", ALL_TYPES)
    assert complete_messages([m.model_dump() for m in again]) == first
    assert complete_messages([m.model_dump() for m in twice]) == first


def test_prompts_not_written_by_the_adapter_get_a_plain_reply() -> None:
    assert complete_messages([{"role": "user", "content": "Hello there. How are you?"}]) == "Hello there."
    assert complete_messages([]) == "OK"
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"n": {"type": "integer"}, "c": {"enum": ["u", "v"]}}}}}
    assert json.loads(complete_messages([{"role": "user", "content": "pick 5"}], fmt)) == {"n": 5, "c": "u"}


# -- the LM protocol, determinism, speed, layering ---------------------------------------------
def test_offline_lm_implements_the_protocol() -> None:
    lm = OfflineLM()
    assert isinstance(lm, LM) and lm.model == "offline"
    messages = ADAPTER.format(ALL_TYPES, inputs=QUERY)
    response = asyncio.run(lm.complete(LMRequest(model="offline", messages=messages)))
    assert ADAPTER.parse(ALL_TYPES, response.text)["label"] in ("alpha", "beta_gamma")
    u = response.usage
    assert (u.calls, u.requests, u.cost) == (1, 0, 0.0)
    assert u.prompt_tokens == sum(len(m.content) for m in messages) // 4 > 0
    assert u.completion_tokens == len(response.text) // 4 > 0


def test_deterministic_across_processes() -> None:
    demos = intent_examples(1, 4)
    messages = [m.model_dump() for m in ADAPTER.format(INTENT_SIG, inputs={"text": "send cash"}, demos=demos)]
    here = complete_messages(messages)
    assert complete_messages(messages) == here
    code = ("import json, sys; from promptc.lm.offline import complete_messages; "
            "print(complete_messages(json.loads(sys.stdin.read())), end='')")
    root = Path(__file__).resolve().parents[1]
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        out = subprocess.run([sys.executable, "-c", code], input=json.dumps(messages),
                             capture_output=True, text=True, env=env, check=True)
        assert out.stdout == here


def test_the_lm_layer_does_not_import_core() -> None:
    lm_dir = Path(__file__).resolve().parents[1] / "promptc" / "lm"
    for name in ("offline.py", "offline_parse.py"):
        tree = ast.parse((lm_dir / name).read_text())
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("promptc.core")], name


def test_messages_may_be_message_objects() -> None:
    messages = ADAPTER.format(INTENT_SIG, inputs={"text": "book a flight"})
    assert complete_messages(messages) == complete_messages([m.model_dump() for m in messages])  # type: ignore[arg-type]
    assert isinstance(messages[0], Message)
