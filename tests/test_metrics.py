"""Metrics: built-ins on tricky inputs, custom metrics by import path, config validation, llm_judge."""

from __future__ import annotations

import asyncio
import textwrap

import pytest
from pydantic import ValidationError

from promptc.core.example import Example
from promptc.metrics.base import MetricResult
from promptc.metrics.builtin import MetricInputError, normalize_answer, parse_number
from promptc.metrics.config import NamedMetric, build_metrics, parse_metric
from promptc.metrics.judge import JudgeRunner


def metric(**cfg) -> NamedMetric:
    return build_metrics([parse_metric(**cfg)], default_field="answer")[0]


def score(m: NamedMetric, pred, gold=None, **extra) -> MetricResult:
    example = {"answer": gold, **extra} if gold is not None else dict(extra)
    return m(example, {"answer": pred})


# -- exact_match / f1 / contains --------------------------------------------------------
@pytest.mark.parametrize("pred, gold", [
    ("The Eiffel Tower!", "eiffel tower"),
    ("  an   apple. ", "Apple"),
    ("ＰＡＲＩＳ", "paris"),  # full-width letters: NFKC
    ("“Paris”", "Paris"),  # unicode quotes are punctuation
    ("18.0", 18),
    (18.0, "18"),
    ("1,000", "1000"),
    ("London", ["Paris", "london"]),  # any acceptable answer
])
def test_exact_match_normalizes(pred, gold):
    assert score(metric(type="exact_match"), pred, gold).score == 1.0


@pytest.mark.parametrize("pred, gold", [("1.5", "15"), ("-3", "3"), ("Paris", "Rome"),
                                        ("18.5", "18")])
def test_exact_match_mismatches(pred, gold):
    result = score(metric(type="exact_match"), pred, gold)
    assert result.score == 0.0
    assert result.feedback == f"expected {gold!r}, got {pred!r}"


def test_exact_match_list_gold_feedback_and_list_prediction():
    result = score(metric(type="exact_match"), "Berlin", ["Paris", "Lyon"])
    assert result.score == 0.0 and "one of ['Paris', 'Lyon']" in result.feedback
    # A list-valued output compares to a list gold as a whole.
    assert score(metric(type="exact_match"), ["a", "b"], ["a", "b"]).score == 1.0
    assert score(metric(type="exact_match"), ["a"], ["a", "b"]).score == 0.0


def test_normalize_answer():
    assert normalize_answer("The  Cat, sat on a mat.") == "cat sat on mat"
    assert normalize_answer("It costs $1,234.50") == "it costs 1234.5"
    assert normalize_answer(True) == "true"


def test_f1_hand_computed():
    m = metric(type="f1")
    # pred tokens {cat, sat} (article dropped), gold {cat, sat, down}: P=1, R=2/3, F1=0.8
    result = score(m, "the cat sat", "cat sat down")
    assert result.score == pytest.approx(0.8)
    assert "0.80" in result.feedback
    # P=1/4, R=1/2 -> F1 = 2*(1/8)/(3/4) = 1/3
    assert score(m, "red blue green yellow", "red black").score == pytest.approx(1 / 3)
    assert score(m, "nothing shared", "cat").score == 0.0
    assert score(m, "Cat sat down.", "cat sat down").score == 1.0
    # Max over gold answers.
    assert score(m, "cat sat", ["dog", "cat sat down"]).score == pytest.approx(0.8)
    assert m.threshold == 0.5 and m.passed(0.8)


def test_contains_whole_words_and_case():
    m = metric(type="contains")
    assert score(m, "The answer is Paris, France.", "paris").score == 1.0
    assert score(m, "It is 14", "4").score == 0.0
    result = score(m, "Rome", ["Paris", "Lyon"])
    assert result.score == 0.0 and "contain" in result.feedback
    strict = metric(type="contains", ignore_case=False)
    assert score(strict, "the answer is paris", "Paris").score == 0.0


def test_missing_gold_field_is_a_metric_input_error():
    with pytest.raises(MetricInputError, match="no gold field 'label'"):
        metric(type="exact_match", gold="label")({"answer": "x"}, {"answer": "x"})
    with pytest.raises(MetricInputError, match="no output field 'summary'"):
        metric(type="max_words", field="summary", limit=3)({}, {"answer": "x"})
    with pytest.raises(MetricInputError, match="null"):
        metric(type="f1")({"answer": None}, {"answer": "x"})


# -- numbers, labels -------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("$1,234.50", 1234.5), ("18.0", 18.0), ("1/2", 0.5), ("1,000", 1000.0), ("-3", -3.0),
    ("50%", 50.0), ("The answer is 42.", 42.0), ("−7", -7.0), (3, 3.0),
    ("between 3 and 5", None), ("nan", None), ("inf", None), ("many", None), (True, None),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numeric_match():
    m = metric(type="numeric_match")
    assert score(m, "$1,234.50", "1234.5").score == 1.0
    assert score(m, "1/2", 0.5).score == 1.0
    assert score(m, "18.0", "18").score == 1.0
    assert score(m, "about 3", ["4", 3]).score == 1.0
    result = score(m, "41", 42)
    assert result.score == 0.0 and result.feedback == "expected 42, got 41"
    bad = score(m, "I don't know", 42)
    assert bad.score == 0.0 and bad.feedback == "could not parse a number from \"I don't know\""
    with pytest.raises(MetricInputError, match="not a number"):
        score(m, "1", "many")


def test_numeric_match_tolerance_edges():
    m = metric(type="numeric_match", tolerance=0.01)
    assert score(m, "1.01", "1.00").score == 1.0  # inclusive despite float error
    assert score(m, "0.99", "1.00").score == 1.0
    assert score(m, "1.0101", "1.00").score == 0.0
    rel = metric(type="numeric_match", relative_tolerance=0.05)
    assert score(rel, "105", "100").score == 1.0
    assert score(rel, "106", "100").score == 0.0
    assert score(metric(type="numeric_match"), "0.1", 0.1000001).score == 1.0  # default 1e-6


def test_label_accuracy():
    m = metric(type="label_accuracy")
    assert score(m, "  Billing ", "billing").score == 1.0
    assert score(m, "refund", ["billing", "Refund"]).score == 1.0
    result = score(m, "shipping", "billing")
    assert result.score == 0.0 and result.feedback == "expected label 'billing', got 'shipping'"


# -- json, regex, lengths ------------------------------------------------------------------
def test_json_valid():
    m = metric(type="json_valid")
    assert score(m, '```json\n{"a": 1}\n```').score == 1.0
    assert score(m, {"a": 1}).score == 1.0 and score(m, [1, 2]).score == 1.0
    assert score(m, "42").score == 1.0
    bad = score(m, "{'a': 1}")
    assert bad.score == 0.0 and bad.feedback.startswith("invalid JSON")


def test_json_schema_violation_feedback():
    schema = {"type": "object", "required": ["name", "age"],
              "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    m = metric(type="json_schema", schema=schema)
    assert score(m, '```\n{"name": "Ann", "age": 3}\n```').score == 1.0
    result = score(m, {"name": "Ann", "age": "three"})
    assert result.score == 0.0
    assert result.feedback == "schema violation: $.age: expected integer, got string"
    assert "missing required property 'age'" in score(m, '{"name": "Ann"}').feedback
    assert score(m, "not json").feedback.startswith("invalid JSON")


def test_regex():
    m = metric(type="regex", pattern=r"^\d{3}-\d{4}$")
    assert score(m, "555-1234").score == 1.0
    result = score(m, "call 555-1234")
    assert result.score == 0.0 and r"^\d{3}-\d{4}$" in result.feedback
    assert score(metric(type="regex", pattern="yes"), "YES!").score == 1.0
    assert score(metric(type="regex", pattern="yes", ignore_case=False), "YES!").score == 0.0


def test_length_limits():
    assert score(metric(type="max_words", limit=3), "one two three").score == 1.0
    result = score(metric(type="max_words", limit=3), "one two three four")
    assert result.score == 0.0 and result.feedback == "4 words, more than the limit of 3"
    assert score(metric(type="max_chars", limit=5), "hello").score == 1.0
    assert score(metric(type="max_chars", limit=4), "hello").feedback == \
        "5 characters, more than the limit of 4"
    assert score(metric(type="min_words", limit=2), "one").feedback == \
        "1 words, fewer than the minimum of 2"
    assert score(metric(type="min_words", limit=2), "one two").score == 1.0


# -- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg, message", [
    ({"type": "exact_match", "python": "m:f"}, "exactly one of 'type'"),
    ({}, "exactly one of 'type'"),
    ({"type": "regex"}, "metric type 'regex' needs 'pattern'"),
    ({"type": "max_words"}, "needs 'limit'"),
    ({"type": "json_schema"}, "needs 'schema'"),
    ({"type": "llm_judge"}, "needs 'rubric'"),
    ({"type": "regex", "pattern": "("}, "invalid regex '(': missing )"),
    ({"type": "exact_match", "limit": 3}, "option 'limit' does not apply to metric type 'exact_match'"),
    ({"python": "m:f", "schema": {}}, "option 'schema' does not apply"),
    ({"python": "not a path"}, "module.path:function"),
    ({"type": "bleu"}, "exact_match"),
    ({"type": "f1", "colour": "red"}, "Extra inputs are not permitted"),
    ({"type": "f1", "weight": -1}, "greater than or equal to 0"),
])
def test_config_validation_errors(cfg, message):
    with pytest.raises(ValidationError) as info:
        parse_metric(cfg)
    assert message in str(info.value)


def test_build_metrics_names_primary_and_thresholds():
    configs = [parse_metric(type="exact_match"), parse_metric(type="f1", weight=0.5),
               parse_metric(type="exact_match", field="label")]
    built = build_metrics(configs, default_field="answer")
    assert [m.name for m in built] == ["exact_match", "f1", "exact_match_2"]
    assert [m.primary for m in built] == [True, False, False]
    assert [m.threshold for m in built] == [1.0, 0.5, 1.0]
    assert [m.field for m in built] == ["answer", "answer", "label"]
    assert built[2]({"label": "x"}, {"label": "X"}).score == 1.0  # gold defaults to field
    named = build_metrics([parse_metric(type="f1"), parse_metric(type="f1", name="f", primary=True,
                                                                  threshold=0.7)],
                          default_field="answer")
    assert [(m.name, m.primary, m.threshold) for m in named] == [("f1", False, 0.5), ("f", True, 0.7)]
    with pytest.raises(ValueError, match="only one metric can be primary"):
        build_metrics([parse_metric(type="f1", primary=True),
                       parse_metric(type="exact_match", primary=True)], default_field="a")
    with pytest.raises(ValueError, match="needs LMs"):
        build_metrics([parse_metric(type="llm_judge", rubric="r")], default_field="a")


def test_schema_alias_round_trip():
    cfg = parse_metric({"type": "json_schema", "schema": {"type": "object"}})
    assert cfg.json_schema == {"type": "object"}
    assert cfg.model_dump(by_alias=True, exclude_unset=True) == {"type": "json_schema",
                                                                   "schema": {"type": "object"}}


def test_sync_metrics_work_through_acall():
    m = metric(type="exact_match")
    assert asyncio.run(m.acall({"answer": "a"}, {"answer": "A"})).score == 1.0


# -- custom metrics -----------------------------------------------------------------------------
CUSTOM = '''
def as_bool(example, prediction, trace=None):
    return prediction["answer"] == example["answer"]

def as_float(example, prediction):
    return 0.25

def with_feedback(example, prediction, trace=None):
    return (0.5, f"trace={trace!r}")

def positional(example, prediction, trace):
    return trace is None

def bad_type(example, prediction):
    return "great"

def out_of_range(example, prediction):
    return 1.5

def raises(example, prediction):
    raise RuntimeError("boom")

async def coro(example, prediction, trace=None):
    return 1.0

NOT_CALLABLE = 3

def one_arg(example):
    return 1.0
'''


@pytest.fixture
def custom_module(tmp_path, monkeypatch):
    (tmp_path / "promptc_test_custom_metrics.py").write_text(textwrap.dedent(CUSTOM))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "promptc_test_custom_metrics"


def custom(path: str) -> NamedMetric:
    return build_metrics([parse_metric(python=path)], default_field="answer")[0]


def test_custom_metric_return_types(custom_module):
    ex, pred = {"answer": "a"}, {"answer": "a"}
    m = custom(f"{custom_module}:as_bool")
    assert m.name == "as_bool" and m.kind == "python" and m.threshold == 0.5 and m.primary
    assert m(ex, pred) == MetricResult(score=1.0)
    assert custom(f"{custom_module}:as_float")(ex, pred).score == 0.25
    assert custom(f"{custom_module}:with_feedback")(ex, pred, trace="T") == \
        MetricResult(score=0.5, feedback="trace='T'")
    assert custom(f"{custom_module}:positional")(ex, pred).score == 1.0
    with pytest.raises(TypeError, match="metric 'bad_type' returned a bad value"):
        custom(f"{custom_module}:bad_type")(ex, pred)
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5"):
        custom(f"{custom_module}:out_of_range")(ex, pred)
    with pytest.raises(RuntimeError, match="boom"):
        custom(f"{custom_module}:raises")(ex, pred)


def test_async_custom_metric(custom_module):
    m = custom(f"{custom_module}:coro")
    assert m.is_async
    assert asyncio.run(m.acall({}, {})).score == 1.0
    assert m({}, {}).score == 1.0  # no running loop: run to completion

    async def inside_a_loop():
        with pytest.raises(RuntimeError, match="use `await metric.acall"):
            m({}, {})

    asyncio.run(inside_a_loop())


@pytest.mark.parametrize("attr, message", [
    ("missing", "has no attribute 'missing'"),
    ("NOT_CALLABLE", "is not callable"),
    ("one_arg", "must accept (example, prediction"),
])
def test_custom_metric_bad_attribute(custom_module, attr, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        custom(f"{custom_module}:{attr}")
    assert f"{custom_module}:{attr}" in str(info.value)


def test_custom_metric_bad_module(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="cannot import metric 'no_such_module_xyz:f'.*No module"):
        custom("no_such_module_xyz:f")
    (tmp_path / "promptc_test_broken_metrics.py").write_text("raise ImportError('needs numpy')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="raised ImportError: needs numpy"):
        custom("promptc_test_broken_metrics:f")


def test_custom_metric_imports_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "promptc_test_cwd_metrics.py").write_text("def score(e, p):\n    return True\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", [p for p in __import__("sys").path if p not in ("", str(tmp_path))])
    assert custom("promptc_test_cwd_metrics:score")({}, {}).score == 1.0


# -- llm_judge -------------------------------------------------------------------------------
RUBRIC = "The answer must name the capital city and nothing else."


def test_llm_judge_offline():
    from promptc.lm.offline import OfflineLM

    judge = JudgeRunner({"default": OfflineLM()})
    m = build_metrics([parse_metric(type="llm_judge", rubric=RUBRIC)], default_field="answer",
                      judge=judge)[0]
    assert m.is_async and m.threshold == 0.5
    example = Example({"question": "Capital of France?", "answer": "Paris"}, input_keys=["question"])
    result = asyncio.run(m.acall(example, {"answer": "Paris is the capital"}))
    assert 0.0 <= result.score <= 1.0
    assert result.feedback
    assert judge.usage.calls == 1
    with pytest.raises(ValueError, match="needs an LM named 'judge'"):
        build_metrics([parse_metric(type="llm_judge", rubric=RUBRIC, lm="judge")],
                      default_field="answer", judge=judge)


def test_llm_judge_through_fake_server():
    from promptc.lm.openai_client import OpenAICompatibleLM
    from promptc.testing import FakeOpenAIServer

    with FakeOpenAIServer() as srv:
        srv.responder = lambda body: ("[[ ## score ## ]]\n0.8\n\n[[ ## feedback ## ]]\nclose\n\n"
                                      "[[ ## completed ## ]]")
        lm = OpenAICompatibleLM("fake-model", base_url=srv.base_url, api_key="sk-x")
        judge = JudgeRunner({"default": OfflineLMStub(), "judge": lm})
        m = build_metrics([parse_metric(type="llm_judge", rubric=RUBRIC)], default_field="answer",
                          judge=judge)[0]

        async def go():
            try:
                return await m.acall({"question": "Capital of France?", "answer": "Paris"},
                                     {"answer": "Paris"})
            finally:
                await lm.aclose()

        result = asyncio.run(go())
        assert result == MetricResult(score=0.8, feedback="close")
        (request,) = srv.requests
        text = "\n".join(msg["content"] for msg in request.body["messages"])
        assert RUBRIC in text and "Capital of France?" in text and "Paris" in text

        # Scores outside [0, 1] are clamped; an unusable reply raises.
        srv.responder = lambda body: "[[ ## score ## ]]\n7\n\n[[ ## feedback ## ]]\nok"

        async def again():
            try:
                return await m.acall({"answer": "Paris"}, {"answer": "Paris"})
            finally:
                await lm.aclose()

        assert asyncio.run(again()).score == 1.0
        srv.responder = lambda body: "no idea"
        with pytest.raises(Exception, match="llm_judge"):
            asyncio.run(again())


class OfflineLMStub:
    """Stands in for the program's own LM: the judge must not use it when 'judge' exists."""

    model = "stub"

    async def complete(self, request):
        raise AssertionError("the judge used the default LM")
