"""Reading a chat prompt in the adapter's wire format back into fields, demos and inputs.

This is the offline LM's "reading comprehension". It works on the message text only,
as a real model would, and lives in the `lm` layer, which must not import
`promptc.core` (core imports lm, never the reverse). So the few bits of the format
it needs - the `[[ ## field ## ]]` marker regex and the spellings of types and type
hints written by `promptc.core.adapter` - are duplicated here on purpose, in their
simplest form. If the adapter's format changes, the offline LM tests catch it.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

MARKER = re.compile(r"\[\[\s*##\s*([A-Za-z_][A-Za-z0-9_]*)\s*##\s*\]\]")
COMPLETED = "completed"
REASK_PREFIX = "Your previous reply could not be parsed"

_FIELD_LINE = re.compile(r"^\d+\. `([A-Za-z_][A-Za-z0-9_]*)` \((.*)$")
_HINT_LINE = re.compile(r"^\[\[ ## (\w+) ## \]\]\n\{\1\}(?: {8}# note: (.*))?$", re.M)
_OUTPUT_REQUEST = re.compile(
    r"(?:\A|\n\n)Respond with (?:the corresponding output fields|a JSON object with the keys)"
)
_LIST_ITEM = re.compile(r"\[(\d+)\] «(.*?)»(?=\n\[\d+\] «|\Z)", re.S)
_JSON_SYSTEM = "Respond with a single JSON object"


@dataclass(frozen=True)
class TypeInfo:
    """A field type as spelled in the prompt: str, int, float, bool, list, enum or json."""

    kind: str = "str"
    values: tuple[str, ...] = ()
    item: TypeInfo | None = None
    schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class FieldInfo:
    """A field named in the system prompt's field list."""

    name: str
    type: TypeInfo = field(default_factory=TypeInfo)
    desc: str = ""


@dataclass
class Demo:
    """One demonstration: raw input texts and output values (text, or JSON values)."""

    inputs: dict[str, str]
    outputs: dict[str, Any]


@dataclass
class Prompt:
    """Everything the offline LM reads from one request."""

    inputs: list[FieldInfo]
    outputs: list[FieldInfo]
    demos: list[Demo]
    query: dict[str, str]
    json_mode: bool


def _get(message: Any, key: str) -> str:
    value = message.get(key) if isinstance(message, dict) else getattr(message, key, "")
    return value if isinstance(value, str) else ""


def drop_reasks(messages: list[Any]) -> list[Any]:
    """The original request behind any trailing re-asks (bad reply + 'could not be parsed')."""
    msgs = list(messages)
    while (len(msgs) >= 3 and _get(msgs[-1], "role") == "user"
           and _get(msgs[-1], "content").lstrip().startswith(REASK_PREFIX)
           and _get(msgs[-2], "role") == "assistant"):
        msgs = msgs[:-2]
    return msgs


def parse_prompt(messages: list[Any], response_format: dict[str, Any] | None = None) -> Prompt:
    """Parse a (re-ask-free) chat prompt into fields, demos and the query's inputs."""
    system = "\n".join(_get(m, "content") for m in messages if _get(m, "role") == "system")
    chat = [m for m in messages if _get(m, "role") in ("user", "assistant")]
    last_user = next((i for i in range(len(chat) - 1, -1, -1) if _get(chat[i], "role") == "user"), None)
    final = _get(chat[last_user], "content") if last_user is not None else ""
    inputs, outputs = _field_lists(system)
    if not outputs:
        outputs = _outputs_from_request(final) or _outputs_from_schema(response_format)
    demos = []
    history = chat[:last_user] if last_user is not None else []
    for user, assistant in zip(history[::2], history[1::2], strict=False):
        if _get(user, "role") == "user" and _get(assistant, "role") == "assistant":
            demos.append(Demo(sections(_get(user, "content")), _demo_outputs(_get(assistant, "content"))))
    cut = list(_OUTPUT_REQUEST.finditer(final))
    body = final[:cut[-1].start()] if cut else final
    query = sections(body) or ({"input": body.strip()} if body.strip() else {})
    asks_json = bool(cut) and "a JSON object with the keys" in final[cut[-1].start():]
    wants_json = bool(response_format) and response_format.get("type") != "text"  # type: ignore[union-attr]
    return Prompt(inputs, outputs, demos, query, wants_json or asks_json or _JSON_SYSTEM in system)


def sections(text: str) -> dict[str, str]:
    """`{field: raw text}` for each marker in `text`, up to `[[ ## completed ## ]]`."""
    out: dict[str, str] = {}
    found = list(MARKER.finditer(text))
    for i, m in enumerate(found):
        if m.group(1) == COMPLETED:
            break
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        out.setdefault(m.group(1), text[m.end():end].strip())
    return out


def list_items(text: str) -> list[str] | None:
    """The items of a list rendered as `[1] «a»` lines, or None if `text` is not one."""
    if text.strip() == "[]":
        return []
    items = _LIST_ITEM.findall(text.strip())
    if items and "\n".join(f"[{n}] «{v}»" for n, v in items) == text.strip():
        return [v for _, v in items]
    return None


def _demo_outputs(text: str) -> dict[str, Any]:
    found = sections(text)
    if found:
        return dict(found)
    stripped = re.sub(r"^```\w*\n?|\n?```$", "", text.strip())
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError:
        return {}
    return obj if isinstance(obj, dict) else {}


# -- the system prompt's field lists -------------------------------------------
def _field_lists(system: str) -> tuple[list[FieldInfo], list[FieldInfo]]:
    m = re.search(r"Your input fields are:\n(.*?)\nYour output fields are:\n(.*?)(?:\n\n|\Z)", system, re.S)
    if not m:
        return [], []
    hints = {h.group(1): h.group(2) or "" for h in _HINT_LINE.finditer(system)}
    return _field_list(m.group(1), hints), _field_list(m.group(2), hints)


def _field_list(block: str, hints: dict[str, str]) -> list[FieldInfo]:
    fields: list[FieldInfo] = []
    for line in block.splitlines():
        m = _FIELD_LINE.match(line)
        if not m:
            if fields:  # a description that spans lines
                last = fields[-1]
                fields[-1] = FieldInfo(last.name, last.type, (last.desc + "\n" + line).strip())
            continue
        spelling, rest = _split_paren(m.group(2))
        ftype = parse_type(spelling, hints.get(m.group(1), ""))
        fields.append(FieldInfo(m.group(1), ftype, rest.removeprefix(":").strip()))
    return fields


def _split_paren(text: str) -> tuple[str, str]:
    """Split `Literal['a)', 'b']): desc` at the `)` closing the type, skipping quoted text."""
    depth, quote, escaped = 0, "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ")" and depth == 0:
            return text[:i], text[i + 1:]
    return text.rstrip(")"), ""


def parse_type(spelling: str, hint: str = "") -> TypeInfo:
    """A type from its display spelling (`list[str]`, `Literal['a', 'b']`) and its hint."""
    s = spelling.strip()
    if s in ("str", "int", "float", "bool"):
        return TypeInfo(s)
    if s == "json":
        return TypeInfo("json", schema=_hint_schema(hint))
    if s.startswith("list[") and s.endswith("]"):
        return TypeInfo("list", item=parse_type(s[5:-1]))
    if s.startswith("Literal[") and s.endswith("]"):
        try:
            values = ast.literal_eval("[" + s[8:-1] + "]")
        except (ValueError, SyntaxError):
            values = []
        if values and all(isinstance(v, str) for v in values):
            return TypeInfo("enum", values=tuple(values))
    return hint_type(hint)


def hint_type(hint: str) -> TypeInfo:
    """A type from an output hint alone ('must be a single float value', ...)."""
    h = hint.strip()
    if h == "must be a single float value":
        return TypeInfo("float")
    if h == "must be a single int value":
        return TypeInfo("int")
    if h == "must be True or False":
        return TypeInfo("bool")
    if h.startswith("must be exactly one of: "):
        return TypeInfo("enum", values=tuple(h[len("must be exactly one of: "):].split("; ")))
    if h.startswith("must be a JSON array of "):
        return TypeInfo("list", item=parse_type(h[len("must be a JSON array of "):]))
    if h.startswith("must be valid JSON"):
        return TypeInfo("json", schema=_hint_schema(h))
    return TypeInfo("str")


def _hint_schema(hint: str) -> dict[str, Any] | None:
    _, sep, rest = hint.partition("matching the schema: ")
    if not sep:
        return None
    try:
        schema = json.loads(rest)
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


# -- fallbacks for prompts not written by the adapter ---------------------------
def _outputs_from_request(final: str) -> list[FieldInfo]:
    found = list(_OUTPUT_REQUEST.finditer(final))
    if not found:
        return []
    request = final[found[-1].start():]
    pattern = r"`\[\[ ## (\w+) ## \]\]`(?: \((.*?)\))?(?=, |$)" if "output fields" in request \
        else r"`(\w+)`(?: \((.*?)\))?(?=, |\.$)"
    return [FieldInfo(n, hint_type(h)) for n, h in re.findall(pattern, request.strip())
            if n != COMPLETED]


_SCHEMA_KINDS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool",
                 "array": "list", "object": "json"}


def _outputs_from_schema(response_format: dict[str, Any] | None) -> list[FieldInfo]:
    schema = ((response_format or {}).get("json_schema") or {}).get("schema") or {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return []
    return [FieldInfo(name, _schema_type(sub)) for name, sub in props.items()]


def _schema_type(schema: Any) -> TypeInfo:
    if not isinstance(schema, dict):
        return TypeInfo("json")
    if isinstance(schema.get("enum"), list) and all(isinstance(v, str) for v in schema["enum"]):
        return TypeInfo("enum", values=tuple(schema["enum"]))
    kind = _SCHEMA_KINDS.get(schema.get("type"), "json")  # type: ignore[arg-type]
    if kind == "list":
        return TypeInfo("list", item=_schema_type(schema.get("items")))
    return TypeInfo(kind, schema=schema if kind == "json" else None)
