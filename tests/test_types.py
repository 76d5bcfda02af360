import pytest

from promptc.core.signature import Signature
from promptc.core.types import CoercionError, FieldType


@pytest.mark.parametrize("text,kind", [
    ("str", "str"), ("int", "int"), ("float", "float"), ("bool", "bool"), ("json", "json"),
    ("list[str]", "list"), ("Literal['a', 'b']", "enum"), ('Literal["x,y", "z"]', "enum"),
])
def test_parse_spellings(text, kind):
    assert FieldType.parse(text).kind == kind


def test_literal_values_keep_commas_inside_quotes():
    assert FieldType.parse('Literal["x,y", "z"]').values == ("x,y", "z")


def test_unknown_type_is_an_error():
    with pytest.raises(ValueError, match="unknown type"):
        FieldType.parse("flaot")


@pytest.mark.parametrize("raw,expected", [
    ("$1,234.50", 1234.5), ("18.0", 18.0), ("1/2", 0.5), ("**42**", 42.0), ("The answer is 7.", 7.0),
    (3, 3.0), ("```\n12\n```", 12.0),
])
def test_float_coercion(raw, expected):
    assert FieldType(kind="float").coerce(raw) == expected


@pytest.mark.parametrize("raw", ["between 3 and 4", "none", True, None])
def test_float_coercion_failures(raw):
    with pytest.raises(CoercionError):
        FieldType(kind="float").coerce(raw)


def test_int_rejects_fractions():
    assert FieldType(kind="int").coerce("18.0") == 18
    with pytest.raises(CoercionError):
        FieldType(kind="int").coerce("2.5")


def test_bool_enum_list_json():
    assert FieldType(kind="bool").coerce("Yes") is True
    enum = FieldType.parse("Literal['billing', 'tech_support']")
    assert enum.coerce("Billing") == "billing"
    assert enum.coerce("The label is: tech_support.") == "tech_support"
    with pytest.raises(CoercionError):
        enum.coerce("billing or tech_support")
    lst = FieldType.parse("list[int]")
    assert lst.coerce('["1", 2]') == [1, 2]
    assert FieldType.parse("list[str]").coerce("- a\n- b") == ["a", "b"]
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    js = FieldType(kind="json", json_schema=schema)
    assert js.coerce('```json\n{"x": 1}\n```') == {"x": 1}
    with pytest.raises(CoercionError, match="schema"):
        js.coerce('{"y": 1}')


def test_flow_compatibility():
    f, i, s = FieldType(kind="float"), FieldType(kind="int"), FieldType(kind="str")
    assert f.accepts(i) and not i.accepts(f)
    assert s.accepts(FieldType.parse("Literal['a']"))
    assert not s.accepts(FieldType.parse("list[str]"))


def test_inline_signature():
    sig = Signature.parse("question, context: list[str] -> answer: float, label: Literal['a', 'b']")
    assert sig.input_names == ["question", "context"]
    assert sig.output("label").type.values == ("a", "b")
    with pytest.raises(ValueError, match="->"):
        Signature.parse("question answer")
    with pytest.raises(ValueError, match="duplicate"):
        Signature.parse("a, a -> b")
