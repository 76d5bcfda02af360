"""Built-in metrics: string, number, label, JSON and length checks on one output field.

Each scorer takes plain values (`prediction`, `gold`, options) and returns a
`MetricResult` whose feedback says what was wrong; `builtin_metric` wraps one into a
`(example, prediction, trace) -> MetricResult` function that reads the configured
fields. A gold value may be a list of acceptable answers (any match counts).
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from promptc.core.jsonschema import SchemaViolation, validate_json_schema
from promptc.core.types import CoercionError, _parse_number, as_text, count_words, strip_fences
from promptc.metrics.base import MetricResult

# What every metric is turned into: sync metrics return a result, async ones an awaitable.
MetricFn = Callable[[Mapping[str, Any], Mapping[str, Any], Any], "MetricResult | Awaitable[Any]"]
# A built-in scorer with its options bound: (prediction value, gold value or None) -> result.
Scorer = Callable[[Any, Any], MetricResult]

BINARY_TYPES = frozenset({"exact_match", "contains", "regex", "numeric_match", "label_accuracy",
                          "json_valid", "json_schema", "max_words", "max_chars", "min_words"})
GOLD_TYPES = frozenset({"exact_match", "f1", "contains", "numeric_match", "label_accuracy"})


class MetricInputError(ValueError):
    """The example or prediction lacks a field the metric reads (a per-example error)."""


# -- normalization ---------------------------------------------------------------------
_PUNCT = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_NUM = re.compile(r"(?<![\w.])[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?!\w)")


def _canon_number(match: re.Match[str]) -> str:
    # "18.0", "+18" and "018" all read as 18: a model's formatting is not its answer.
    s = match.group().replace(",", "").lstrip("+")
    sign = "-" if s.startswith("-") else ""
    whole, _, frac = s.lstrip("-").partition(".")
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    out = whole + ("." + frac if frac else "")
    return out if out == "0" else sign + out


def _strip_punct(text: str) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch in _PUNCT or unicodedata.category(ch).startswith("P"):
            prev, nxt = text[i - 1:i], text[i + 1:i + 2]
            # Keep decimal points and leading minus signs: "1.5" is not "15", "-3" not "3".
            if ch == "." and prev.isdigit() and nxt.isdigit():
                out.append(ch)
            elif ch == "-" and nxt.isdigit() and (not prev or prev.isspace()):
                out.append(ch)
            continue
        out.append(ch)
    return "".join(out)


def normalize_answer(value: Any, *, ignore_case: bool = True) -> str:
    """SQuAD-style: NFKC, lower-case, canonical numbers, no punctuation/articles, single spaces."""
    text = unicodedata.normalize("NFKC", as_text(value))
    if ignore_case:
        text = text.casefold()
    text = _strip_punct(_NUM.sub(_canon_number, text))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def parse_number(value: Any) -> float | None:
    """A finite number from a value or text ("$1,234.50", "1/2", "50%" -> 50, "about 3 cm"), else None.

    Text must hold exactly one number; a percent sign is dropped, not divided by 100.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", strip_fences(value)).replace("\u2212", "-")
        try:
            number = _parse_number(text)
        except (CoercionError, ValueError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _short(value: Any, limit: int = 80) -> str:
    text = as_text(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _fmt_number(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _alternatives(gold: Any, prediction: Any) -> list[Any]:
    """A list gold holds acceptable answers, unless the prediction itself is a list."""
    if not isinstance(gold, list):
        return [gold]
    if isinstance(prediction, list):
        return gold if gold and all(isinstance(g, list) for g in gold) else [gold]
    if not gold:
        raise MetricInputError("the gold value is an empty list of acceptable answers")
    return gold


def _expected(golds: list[Any]) -> str:
    if len(golds) == 1:
        return _short(golds[0])
    return "one of [" + ", ".join(_short(g, 40) for g in golds[:5]) + (", ..." if len(golds) > 5 else "") + "]"


# -- scorers -----------------------------------------------------------------------------
def exact_match(prediction: Any, gold: Any) -> MetricResult:
    """1 if the normalized prediction equals a normalized gold answer."""
    golds = _alternatives(gold, prediction)
    pred = normalize_answer(prediction)
    if any(normalize_answer(g) == pred for g in golds):
        return MetricResult(score=1.0)
    return MetricResult(score=0.0, feedback=f"expected {_expected(golds)}, got {_short(prediction)}")


def _f1_tokens(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: Any, gold: Any) -> MetricResult:
    """Token-level F1 of normalized answers (SQuAD), the best over the gold answers."""
    golds = _alternatives(gold, prediction)
    pred = normalize_answer(prediction).split()
    score = max(_f1_tokens(pred, normalize_answer(g).split()) for g in golds)
    if score >= 1.0:
        return MetricResult(score=1.0)
    return MetricResult(score=score, feedback=f"token F1 {score:.2f}: expected {_expected(golds)}, "
                                              f"got {_short(prediction)}")


def contains(prediction: Any, gold: Any, *, ignore_case: bool = True) -> MetricResult:
    """1 if a normalized gold answer appears in the normalized prediction, as whole words."""
    golds = _alternatives(gold, prediction)
    # Padded with spaces so "4" is not found in "14": answers are words, not substrings.
    pred = f" {normalize_answer(prediction, ignore_case=ignore_case)} "
    if any(f" {normalize_answer(g, ignore_case=ignore_case)} " in pred for g in golds):
        return MetricResult(score=1.0)
    return MetricResult(score=0.0, feedback=f"expected the output to contain {_expected(golds)}, "
                                            f"got {_short(prediction)}")


def regex(prediction: Any, pattern: re.Pattern[str]) -> MetricResult:
    """1 if `pattern` is found (re.search) in the prediction's text."""
    if pattern.search(as_text(prediction)):
        return MetricResult(score=1.0)
    return MetricResult(score=0.0, feedback=f"output does not match the pattern /{pattern.pattern}/: "
                                            f"got {_short(prediction)}")


def numeric_match(prediction: Any, gold: Any, *, tolerance: float = 1e-6,
                  relative_tolerance: float = 0.0) -> MetricResult:
    """1 if the prediction's number is within max(tolerance, relative_tolerance*|gold|) of gold."""
    golds = []
    for g in _alternatives(gold, None):
        number = parse_number(g)
        if number is None:
            raise MetricInputError(f"the gold value {_short(g)} is not a number")
        golds.append(number)
    pred = parse_number(prediction)
    if pred is None:
        return MetricResult(score=0.0, feedback=f"could not parse a number from {_short(prediction)}")
    for g in golds:
        bound = max(tolerance, relative_tolerance * abs(g))
        # Inclusive, with float slack: 1.01 vs 1.00 at tolerance 0.01 must pass.
        if abs(pred - g) <= bound + 1e-12 * max(1.0, abs(g)):
            return MetricResult(score=1.0)
    expected = _fmt_number(golds[0]) if len(golds) == 1 else \
        "one of [" + ", ".join(_fmt_number(g) for g in golds) + "]"
    return MetricResult(score=0.0, feedback=f"expected {expected}, got {_fmt_number(pred)}")


def label_accuracy(prediction: Any, gold: Any) -> MetricResult:
    """1 if the predicted label equals a gold label, ignoring case and surrounding spaces."""
    golds = _alternatives(gold, prediction)
    pred = as_text(prediction).strip().casefold()
    if any(as_text(g).strip().casefold() == pred for g in golds):
        return MetricResult(score=1.0)
    return MetricResult(score=0.0, feedback=f"expected label {_expected(golds)}, got {_short(prediction)}")


def _load_json(prediction: Any) -> tuple[Any, str | None]:
    """(value, None) or (None, why it is not JSON)."""
    if not isinstance(prediction, str):
        try:
            json.dumps(prediction)
        except (TypeError, ValueError) as exc:
            return None, f"not JSON-serializable: {exc}"
        return prediction, None
    text = strip_fences(prediction).strip()
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON ({exc.msg} at position {exc.pos}) in {_short(prediction)}"


def json_valid(prediction: Any) -> MetricResult:
    """1 if the prediction is a JSON value, or text (code fences allowed) that parses as JSON."""
    _, problem = _load_json(prediction)
    return MetricResult(score=0.0, feedback=problem) if problem else MetricResult(score=1.0)


def json_schema(prediction: Any, schema: Mapping[str, Any]) -> MetricResult:
    """1 if the prediction is valid JSON that satisfies `schema`."""
    value, problem = _load_json(prediction)
    if problem:
        return MetricResult(score=0.0, feedback=problem)
    try:
        validate_json_schema(value, dict(schema))
    except SchemaViolation as exc:
        return MetricResult(score=0.0, feedback=f"schema violation: {exc}")
    return MetricResult(score=1.0)


def max_words(prediction: Any, limit: int) -> MetricResult:
    """1 if the prediction has at most `limit` whitespace-separated words."""
    n = count_words(prediction)
    return MetricResult(score=float(n <= limit),
                        feedback=None if n <= limit else f"{n} words, more than the limit of {limit}")


def max_chars(prediction: Any, limit: int) -> MetricResult:
    """1 if the prediction has at most `limit` characters."""
    n = len(as_text(prediction))
    return MetricResult(score=float(n <= limit), feedback=None if n <= limit else
                        f"{n} characters, more than the limit of {limit}")


def min_words(prediction: Any, limit: int) -> MetricResult:
    """1 if the prediction has at least `limit` words."""
    n = count_words(prediction)
    return MetricResult(score=float(n >= limit),
                        feedback=None if n >= limit else f"{n} words, fewer than the minimum of {limit}")


# -- wiring to example/prediction rows ---------------------------------------------------
def _fields(row: Mapping[str, Any]) -> str:
    return ", ".join(str(k) for k in row) or "none"


def read_prediction(prediction: Mapping[str, Any], field: str) -> Any:
    """The scored output value; MetricInputError names a missing field."""
    if field not in prediction:
        raise MetricInputError(f"the prediction has no output field '{field}' "
                               f"(outputs: {_fields(prediction)})")
    return prediction[field]


def read_gold(example: Mapping[str, Any], gold: str) -> Any:
    """The gold value of an example; MetricInputError if it is missing or null."""
    if gold not in example:
        raise MetricInputError(f"the example has no gold field '{gold}' (fields: {_fields(example)})")
    if example[gold] is None:
        raise MetricInputError(f"the example's gold field '{gold}' is null")
    return example[gold]


def gold_problem(example: Mapping[str, Any], gold: str, *, numeric: bool = False) -> str | None:
    """What is wrong with an example's gold field for a metric that reads it, or None.

    Checked on every row before a job spends anything, so bad labels are a data error
    naming the line instead of error rows found after the run.
    """
    if gold not in example:
        return f"missing gold field '{gold}'"
    value = example[gold]
    if value is None:
        return f"gold field '{gold}' is null"
    if not numeric:
        return None
    if isinstance(value, list) and not value:
        return f"gold field '{gold}' is an empty list"
    for item in value if isinstance(value, list) else [value]:
        if parse_number(item) is None:
            return f"gold field '{gold}': {_short(item)} is not a number"
    return None


def builtin_metric(kind: str, scorer: Scorer, field: str, gold: str) -> MetricFn:
    """A row-level function: `scorer(prediction[field], example[gold] or None)`."""
    needs_gold = kind in GOLD_TYPES

    def metric(example: Mapping[str, Any], prediction: Mapping[str, Any], trace: Any = None) -> MetricResult:
        value = read_prediction(prediction, field)
        return scorer(value, read_gold(example, gold) if needs_gold else None)

    metric.__name__ = str(kind)
    return metric
