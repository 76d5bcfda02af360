import pytest

from promptc.core.adapter import ChatAdapter
from promptc.core.signature import Signature
from promptc.errors import ParseError

SIG = Signature.parse("question -> reasoning, label: Literal['pos', 'neg'], score: float",
                      instructions="Rate the text.")
A = ChatAdapter()


def test_format_puts_demos_between_system_and_question():
    messages = A.format(SIG, inputs={"question": "good?"},
                        demos=[{"question": "great", "reasoning": "r", "label": "pos", "score": 0.9}])
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert "Rate the text." in messages[0].content
    assert "must be exactly one of: pos; neg" in messages[0].content
    assert "[[ ## label ## ]]\npos" in messages[2].content
    assert messages[-1].content.startswith("[[ ## question ## ]]\ngood?")
    assert "[[ ## completed ## ]]" in messages[-1].content


GOOD = {"reasoning": "fine", "label": "pos", "score": 0.5}


@pytest.mark.parametrize("reply", [
    "[[ ## reasoning ## ]]\nfine\n\n[[ ## label ## ]]\npos\n\n[[ ## score ## ]]\n0.5\n\n[[ ## completed ## ]]",
    # chatty preamble, code fence, other case, no end marker
    "Sure! Here you go:\n```\n[[ ## REASONING ## ]]\nfine\n[[ ## Label ## ]]\nPos\n[[ ## score ## ]]\n0.5\n```",
    # a JSON object instead of markers
    '```json\n{"reasoning": "fine", "label": "pos", "score": "0.5"}\n```',
    # label lines
    "Reasoning: fine\n**Label**: pos\nScore: 0.5",
])
def test_parse_tolerates_real_model_habits(reply):
    assert A.parse(SIG, reply) == GOOD


def test_parse_failures_name_the_field():
    with pytest.raises(ParseError, match="`score`"):
        A.parse(SIG, "[[ ## reasoning ## ]]\nx\n[[ ## label ## ]]\npos\n[[ ## score ## ]]\nhigh")
    with pytest.raises(ParseError, match="missing output field"):
        A.parse(SIG, "[[ ## reasoning ## ]]\nx")


def test_reask_builds_a_new_list():
    messages = A.format(SIG, inputs={"question": "q"})
    again = A.reask(messages, "garbage", "missing `label`", SIG)
    assert len(messages) == 2 and len(again) == 4
    assert again[-2].role == "assistant" and again[-2].content == "garbage"
    assert "could not be parsed" in again[-1].content


def test_response_format_schema():
    rf = A.response_format(SIG)
    schema = rf["json_schema"]["schema"]
    assert schema["required"] == ["reasoning", "label", "score"]
    assert schema["properties"]["label"] == {"type": "string", "enum": ["pos", "neg"]}
