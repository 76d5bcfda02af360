"""Variants: a discriminated union that picks a model by one key and words its errors."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, Tag, TypeAdapter, ValidationError

from promptc.core.variants import MISPLACED, NEEDS, UNKNOWN, Variants


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""


class Plain(Base):
    kind: Literal["plain"] = "plain"


class Sized(Base):
    kind: Literal["small", "large"]
    size: int = Field(description="how big")


class Code(Base):
    code: str


Thing = Annotated[
    Annotated[Plain, Tag("plain")] | Annotated[Sized, Tag("small")] | Annotated[Sized, Tag("large")]
    | Annotated[Code, Tag("code")],
    Variants(key="kind", noun="kind", default="plain", alternative="code",
             exclusive="give 'kind' or 'code', not both"),
]
ADAPTER: TypeAdapter[Thing] = TypeAdapter(Thing)


def errors(data: object) -> list[tuple[str, tuple, str]]:
    with pytest.raises(ValidationError) as info:
        ADAPTER.validate_python(data)
    return [(e["type"], tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_the_key_picks_the_model_and_defaults():
    assert isinstance(ADAPTER.validate_python({}), Plain)
    assert ADAPTER.validate_python({"kind": "large", "size": 2}) == Sized(kind="large", size=2)
    assert isinstance(ADAPTER.validate_python({"code": "x"}), Code)


def test_built_models_pass_through_unchanged():
    built = Sized(kind="small", size=1)
    assert ADAPTER.validate_python(built) is built
    assert ADAPTER.validate_python(Code(code="c")) == Code(code="c")


def test_an_option_of_another_variant_says_whose_it_is():
    assert errors({"kind": "plain", "size": 3}) == [
        (MISPLACED, ("plain", "size"), "option 'size' does not apply to kind 'plain' (it is for small, large)")]
    assert errors({"code": "x", "size": 3})[0][2].endswith("(it is for small, large)")


def test_unknown_keys_stay_pydantic_errors():
    assert errors({"kind": "plain", "colour": 1})[0][:2] == ("extra_forbidden", ("plain", "colour"))


def test_a_variants_own_required_option():
    assert errors({"kind": "small"}) == [(NEEDS, ("small", "size"), "kind 'small' needs 'size' (how big)")]


def test_unknown_variant_with_did_you_mean():
    assert errors({"kind": "smal"}) == [
        (UNKNOWN, ("kind",), "expected one of plain, small, large, got 'smal'; did you mean 'small'?")]
    assert errors({"kind": 3})[0][2] == "expected one of plain, small, large, got 3"


def test_both_or_neither_of_key_and_alternative():
    assert errors({"kind": "plain", "code": "x"})[0][2] == "give 'kind' or 'code', not both"


def test_not_a_mapping():
    assert errors("plain")[0][:2] == ("dict_type", ())


def test_nested_errors_keep_their_words_and_braces():
    class Holder(BaseModel):
        things: list[Thing]

    with pytest.raises(ValidationError) as info:
        Holder.model_validate({"things": [{"kind": "{x}"}, {"kind": "small", "size": "big"}]})
    got = [(e["type"], e["loc"]) for e in info.value.errors()]
    assert got == [(UNKNOWN, ("things", 0, "kind")), ("int_parsing", ("things", 1, "small", "size"))]
    assert "got '{x}'" in info.value.errors()[0]["msg"]


def test_round_trip_of_a_dump():
    for data in ({}, {"kind": "large", "size": 2, "name": "n"}, {"code": "m:f"}):
        value = ADAPTER.validate_python(data)
        dumped = ADAPTER.dump_python(value, exclude_unset=True)
        assert dumped == data and ADAPTER.validate_python(dumped) == value
