"""The offline LM: a deterministic, key-free stand-in that learns from its prompt's demos.

It is not a language model. It reads the prompt the way the adapter wrote it (see
`offline_parse`) and answers each output field in order:

* with demonstrations in the prompt, it copies from the demos most similar to the
  current inputs (TF-IDF cosine over word unigrams + bigrams, with IDF computed over
  the demos). Labels (enum and bool fields) are a similarity-weighted vote of the
  3 nearest demos, restricted to the allowed values, in which a label's name shared
  with the inputs also counts; other fields take the value of the nearest demo that
  has one. Demos with no word in common are ignored.
* without (useful) demos, it answers zero-shot from the inputs alone: the label whose
  name best overlaps the input words, the last number mentioned, False, a few salient
  phrases, a schema-shaped JSON default, or the input sentence most related to the
  field.

So example specs run end to end with no network, and few-shot compilation visibly
improves its answers. Same messages -> same reply, in any process (no `hash()`, no
randomness, ties broken by demo order).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from typing import Any

from promptc.lm.base import LMRequest, LMResponse, Usage
from promptc.lm.offline_parse import (
    MARKER,
    Demo,
    FieldInfo,
    Prompt,
    TypeInfo,
    drop_reasks,
    list_items,
    parse_prompt,
)

__all__ = ["OfflineLM", "complete_messages"]

# Label votes: the K nearest demos vote with their similarity, and the label's own name
# counts as evidence too (an LM reads label names). On the synthetic intent task of
# tests/test_offline_lm.py, k=3 with the name prior beat 1-NN and both parts alone.
K_NEIGHBOURS = 3
NAME_PRIOR = 0.3
_MAX_STR = 200
_REASONING_NAMES = ("reasoning", "rationale")

# Negations ("not", "no") are deliberately not stop words: "not good" must differ from "good".
_STOP = frozenset("""a an the and or but if then so of to in on at by for with from into about as
is are was were be been being am do does did done have has had i me my we our you your he she it
its they them their this that these those there here what which who whom whose how when where why
can could would should will shall may might must just also very too than please hi
hello hey thanks thank any some all each much many more most other such only own same up out off
over under again s t""".split())
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


# -- text features -----------------------------------------------------------------
def _stem(word: str) -> str:
    # Just enough to match "refunds"/"refund" and "booking"/"booked"/"book".
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    return word


def _stems(text: str) -> list[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    content = [w for w in words if w not in _STOP]
    return [_stem(w) for w in (content or words)]


def _features(text: str) -> Counter[str]:
    stems = _stems(text)
    return Counter(stems + [f"{a} {b}" for a, b in zip(stems, stems[1:], strict=False)])


def _rank(query: str, docs: list[str]) -> list[tuple[float, int]]:
    """(cosine similarity, demo index) for every doc, most similar first, ties by order."""
    feats = [_features(d) for d in docs]
    df: Counter[str] = Counter()
    for f in feats:
        df.update(f.keys())
    n = len(docs)
    # ln((n+1)/df) rather than sklearn's smoothed idf: with a handful of demos, filler words
    # ("right now", "can you help") otherwise weigh almost as much as the telling ones.
    idf = {t: math.log((1 + n) / c) for t, c in df.items()}

    def vector(counts: Counter[str]) -> dict[str, float]:
        vec = {t: (1.0 + math.log(c)) * idf.get(t, math.log(1 + n)) for t, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in vec.values())) or 1.0
        return {t: w / norm for t, w in vec.items()}

    q = vector(_features(query))
    sims = []
    for i, f in enumerate(feats):
        d = vector(f)
        sims.append((sum(w * d[t] for t, w in q.items() if t in d), i))
    return sorted(sims, key=lambda s: (-s[0], s[1]))


def _plain(text: str) -> str:
    items = list_items(text)
    return "\n".join(items) if items is not None else text


def _input_text(values: dict[str, str]) -> str:
    return "\n".join(_plain(v) for v in values.values())


# -- coercing demo values ------------------------------------------------------------
_TRUE, _FALSE = {"true", "yes", "1"}, {"false", "no", "0"}


def _coerce(value: Any, t: TypeInfo) -> Any:
    """A demo's value as a typed value of `t`; ValueError if it isn't one."""
    if t.kind == "str":
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if t.kind == "enum":
        s = str(value).strip().strip("'\"`*.").strip()
        match = [v for v in t.values if v == s] or [v for v in t.values if v.lower() == s.lower()]
        if not match:
            raise ValueError(s)
        return match[0]
    if t.kind == "bool":
        s = str(value).strip().lower()
        if isinstance(value, bool) or s in _TRUE | _FALSE:
            return value if isinstance(value, bool) else s in _TRUE
        raise ValueError(s)
    if t.kind in ("float", "int"):
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value.replace(",", "").strip()) if isinstance(value, str) else float(value)
        if t.kind == "float":
            return number
        if not number.is_integer():
            raise ValueError(number)
        return int(number)
    if isinstance(value, str):
        text = value.strip()
        if t.kind == "json" or text.startswith("["):
            value = json.loads(text)
        else:
            value = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if t.kind == "list":
        if not isinstance(value, list):
            raise ValueError(value)
        return [_coerce(v, t.item or TypeInfo()) for v in value]
    return value


# -- answering -------------------------------------------------------------------------
def _label_score(label: str, words: set[str]) -> float:
    parts = [_stem(p.lower()) for p in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", label)]
    parts = [p for p in parts if p not in _STOP] or parts
    hits = sum(1 for p in parts if p in words or len(p) >= 4 and any(
        len(w) >= 4 and (w.startswith(p) or p.startswith(w)) for w in words))
    return hits / math.sqrt(len(parts)) if parts else 0.0


def _zero_shot_label(values: tuple[str, ...], text: str) -> str:
    words = set(_stems(text))
    scores = [_label_score(v, words) for v in values]
    return values[scores.index(max(scores))]


def _vote(t: TypeInfo, name: str, ranked: list[tuple[float, int]], demos: list[Demo],
          words: set[str]) -> Any:
    """Similarity-weighted vote of the K nearest demos with an allowed value, plus name evidence."""
    tally: dict[Any, float] = {}
    voters = 0
    for sim, i in ranked:
        if voters == K_NEIGHBOURS or sim <= 0:
            break
        try:
            label = _coerce(demos[i].outputs[name], t)
        except (KeyError, ValueError, TypeError):
            continue
        tally[label] = tally.get(label, 0.0) + sim
        voters += 1
    if not tally:
        return None
    for v in t.values:  # empty for bool
        tally[v] = tally.get(v, 0.0) + NAME_PRIOR * _label_score(v, words)
    best = max(tally.values())
    return next(label for label in tally if tally[label] == best)  # first seen = nearest


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in _NUMBER.findall(text)]


def _phrases(text: str, limit: int = 3) -> list[str]:
    """Salient phrases, RAKE-style: runs of content words, scored by word degree / frequency."""
    runs: list[list[str]] = []
    # Split at punctuation, but keep numbers like 2.5 and 1,000 whole.
    for chunk in re.split(r"(?<!\d)[.,]|[.,](?!\d)|[^\w\s'.,-]+|\n", text):
        run: list[str] = []
        for word in chunk.split():
            if word.lower().strip("'-") in _STOP or not _WORD.search(word):
                runs.append(run)
                run = []
            else:
                run.append(word.strip("'-"))
        runs.append(run)
    runs = [r[:4] for r in runs if r]
    freq: Counter[str] = Counter()
    degree: Counter[str] = Counter()
    for r in runs:
        for w in r:
            freq[w.lower()] += 1
            degree[w.lower()] += len(r)
    scored = sorted(enumerate(runs), key=lambda p: (
        -sum(degree[w.lower()] / freq[w.lower()] for w in p[1]), p[0]))
    out: list[str] = []
    for _, r in scored:
        phrase = " ".join(r)
        if phrase.lower() not in {o.lower() for o in out}:
            out.append(phrase)
        if len(out) == limit:
            break
    return out


def _extract(f: FieldInfo, query: dict[str, str]) -> str:
    """The input sentence most related to the field (and, for QA shapes, the first input)."""
    texts = [_plain(v) for v in query.values() if v.strip()]
    key = set(_stems(f.name.replace("_", " ") + " " + f.desc))
    pool = texts
    if len(texts) > 1:
        # Reading-comprehension shape: answer from the longest input (the passages), using
        # the other inputs (the question) as the query.
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        for i, t in enumerate(texts):
            if i != longest:
                key |= set(_stems(t))
        pool = [texts[longest]]
    sentences = [s.strip() for t in pool for s in _SENTENCE.split(t) if s.strip()]
    if not sentences:
        return ""
    scores = [len(key & set(_stems(s))) for s in sentences]
    best = sentences[scores.index(max(scores))]
    if len(best) > _MAX_STR:
        best = best[:_MAX_STR].rsplit(" ", 1)[0] + "..."
    return best


def _schema_default(schema: Any) -> Any:
    """A small value satisfying the common parts of a JSON schema (required keys, types)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _schema_default(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or kind is None and "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _schema_default(props.get(k, {})) for k in schema.get("required", [])}
    if kind == "array":
        return [_schema_default(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("number", "integer"):
        low = max(0, schema.get("minimum", 0))
        return min(low, schema.get("maximum", low))
    if kind == "boolean":
        return False
    return None if kind == "null" else {}


def _zero_shot(f: FieldInfo, t: TypeInfo, query: dict[str, str]) -> Any:
    text = _input_text(query)
    if t.kind == "enum":
        return _zero_shot_label(t.values, text)
    if t.kind in ("float", "int"):
        last = (_numbers(text) or [0.0])[-1]
        return last if t.kind == "float" else int(math.floor(last + 0.5))
    if t.kind == "bool":
        return False
    if t.kind == "json":
        return _schema_default(t.schema) if t.schema else {}
    if t.kind == "list":
        item = t.item or TypeInfo()
        if item.kind == "str":
            return _phrases(text)
        if item.kind in ("float", "int"):
            numbers = _numbers(text)[:10]
            return numbers if item.kind == "float" else [int(math.floor(n + 0.5)) for n in numbers]
        if item.kind == "enum":
            words = set(_stems(text))
            return [v for v in item.values if _label_score(v, words) > 0]
        return []
    return _extract(f, query)


def _reasoning(prompt: Prompt, ranked: list[tuple[float, int]]) -> str:
    if not prompt.demos:
        return "No demonstrations; answering from the inputs."
    if not ranked or ranked[0][0] <= 0:
        return "No demonstration shares words with these inputs; answering from the inputs."
    sim, i = ranked[0]
    snippet = " ".join(_input_text(prompt.demos[i].inputs).split())
    if len(snippet) > 80:
        snippet = snippet[:80].rsplit(" ", 1)[0] + "..."
    return (f"The most similar demonstration (#{i + 1} of {len(prompt.demos)}, similarity "
            f'{sim:.2f}) is "{snippet}"; following its answer.')


def answer(prompt: Prompt) -> dict[str, Any]:
    """Typed values for the prompt's output fields, in order."""
    docs = [_input_text(d.inputs) for d in prompt.demos]
    text = _input_text(prompt.query)
    ranked = _rank(text, docs) if docs else []
    words = set(_stems(text))
    out: dict[str, Any] = {}
    for f in prompt.outputs:
        t = f.type
        value = None
        if f.name.lower() in _REASONING_NAMES and t.kind == "str":
            value = _reasoning(prompt, ranked)
        elif t.kind in ("enum", "bool"):
            value = _vote(t, f.name, ranked, prompt.demos, words)
        else:
            for sim, i in ranked:
                if sim <= 0:
                    break
                try:
                    value = _coerce(prompt.demos[i].outputs[f.name], t)
                    break
                except (KeyError, ValueError, TypeError):
                    continue
        out[f.name] = _defuse(_zero_shot(f, t, prompt.query) if value is None else value)
    return out


# -- writing the reply -------------------------------------------------------------------
def _defuse(value: Any) -> Any:
    # A copied or extracted text must not be able to open a field of its own.
    if isinstance(value, str):
        return MARKER.sub(lambda m: m.group(1), value)
    return [_defuse(v) for v in value] if isinstance(value, list) else value


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def complete_messages(messages: list[dict[str, Any]], response_format: dict[str, Any] | None = None) -> str:
    """The offline LM's reply to OpenAI-style chat messages (`{"role", "content"}` dicts)."""
    prompt = parse_prompt(drop_reasks(messages), response_format)
    if not prompt.outputs:  # not a promptc prompt: a plain, deterministic echo
        if prompt.json_mode:
            return "{}"
        return _extract(FieldInfo("reply"), {"input": _input_text(prompt.query)}) or "OK"
    values = answer(prompt)
    if prompt.json_mode:
        return json.dumps(values, ensure_ascii=False)
    parts = [f"[[ ## {f.name} ## ]]\n{_render(values[f.name])}" for f in prompt.outputs]
    return "\n\n".join([*parts, "[[ ## completed ## ]]"])


class OfflineLM:
    """The built-in LM: no network, no key, deterministic, learns from in-prompt demos."""

    model: str = "offline"

    def __init__(self, model: str = "offline") -> None:
        self.model = model

    async def complete(self, request: LMRequest) -> LMResponse:
        """Answer `request` locally (one call, no HTTP request, no cost)."""
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        text = complete_messages(messages, request.response_format)
        usage = Usage(calls=1, requests=0, cost=0.0,
                      prompt_tokens=sum(len(m["content"]) for m in messages) // 4,
                      completion_tokens=len(text) // 4)
        return LMResponse(text=text, usage=usage, model=self.model, finish_reason="stop")
