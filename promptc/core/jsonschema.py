"""A small JSON Schema validator: the subset that LM output schemas use.

Supported: type (incl. lists of types), enum, const, properties, required,
additionalProperties (bool), items, minItems/maxItems, minLength/maxLength,
minimum/maximum, anyOf/oneOf. Unknown keywords are ignored, as the standard says.
Written by hand because this subset is ~60 lines and `jsonschema` would be a new
dependency for it.
"""

from __future__ import annotations

from typing import Any


class SchemaViolation(ValueError):
    """A value does not satisfy a schema; the message starts with a JSON path."""


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool)
    or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def validate_json_schema(value: Any, schema: dict[str, Any], path: str = "$") -> None:
    """Raise SchemaViolation if `value` does not match `schema`."""
    if not isinstance(schema, dict):
        return
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_TYPES.get(n, lambda v: True)(value) for n in names):
            raise SchemaViolation(f"{path}: expected {' or '.join(names)}, got {_kind(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaViolation(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        raise SchemaViolation(f"{path}: expected {schema['const']!r}")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = 0
            for sub in schema[key]:
                try:
                    validate_json_schema(value, sub, path)
                    ok += 1
                except SchemaViolation:
                    pass
            if ok == 0 or (key == "oneOf" and ok > 1):
                raise SchemaViolation(f"{path}: does not match {key}")
    if isinstance(value, dict):
        _check_object(value, schema, path)
    elif isinstance(value, list):
        _check_array(value, schema, path)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise SchemaViolation(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise SchemaViolation(f"{path}: longer than {schema['maxLength']}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(f"{path}: below minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(f"{path}: above maximum {schema['maximum']}")


def _check_object(value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            raise SchemaViolation(f"{path}: missing required property {name!r}")
    for name, sub in props.items():
        if name in value:
            validate_json_schema(value[name], sub, f"{path}.{name}")
    if schema.get("additionalProperties") is False:
        extra = sorted(set(value) - set(props))
        if extra:
            raise SchemaViolation(f"{path}: unexpected properties {extra}")


def _check_array(value: list[Any], schema: dict[str, Any], path: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise SchemaViolation(f"{path}: fewer than {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaViolation(f"{path}: more than {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, v in enumerate(value):
            validate_json_schema(v, items, f"{path}[{i}]")


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__
