"""The chat adapter: signature + demos + inputs -> messages, and completion -> typed fields.

The wire format (shared with the offline LM, which reads it back):

    system:    field list, the `[[ ## field ## ]]` structure, then the instructions
    user:      one demo's inputs          } repeated per demo
    assistant: that demo's outputs        }
    user:      the inputs, then a line saying which output markers to write

Each field is a `[[ ## name ## ]]` marker line followed by its value; the reply ends
with `[[ ## completed ## ]]`. In JSON mode the reply is instead one JSON object.

Parsing is lenient about what real models do (code fences, a preamble, field names in
another case, a missing end marker, a JSON object instead of markers, `Name: value`
lines) and strict about types: a value that can't be coerced is a ParseError.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from promptc.core.signature import FieldSpec, Signature
from promptc.core.types import CoercionError, FieldType, strip_fences
from promptc.errors import ParseError
from promptc.lm.base import Message

MARKER = re.compile(r"\[\[\s*##\s*([A-Za-z_][A-Za-z0-9_]*)\s*##\s*\]\]")
COMPLETED = "completed"


def marker(name: str) -> str:
    return f"[[ ## {name} ## ]]"


def type_hint(ftype: FieldType) -> str:
    """What the model is told about an output's format ('' for plain strings)."""
    if ftype.kind == "float":
        return "must be a single float value"
    if ftype.kind == "int":
        return "must be a single int value"
    if ftype.kind == "bool":
        return "must be True or False"
    if ftype.kind == "enum":
        return "must be exactly one of: " + "; ".join(ftype.values or ())
    if ftype.kind == "list":
        return f"must be a JSON array of {ftype.item.display()}"  # type: ignore[union-attr]
    if ftype.kind == "json":
        schema = json.dumps(ftype.json_schema, ensure_ascii=False) if ftype.json_schema else ""
        return "must be valid JSON" + (f" matching the schema: {schema}" if schema else "")
    return ""


def format_value(value: Any, ftype: FieldType | None = None) -> str:
    """Render a field value as prompt text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and (
        ftype is None or ftype.kind == "list"
    ):
        if not value:
            return "[]"
        return "\n".join(f"[{i}] «{v}»" for i, v in enumerate(value, 1))
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value, ensure_ascii=False)


def _format_output_value(value: Any, ftype: FieldType) -> str:
    # Outputs are shown the way we want them written back: lists and objects as JSON.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value, ensure_ascii=False)


class ChatAdapter:
    """Formats signatures into chat messages and parses replies back."""

    def format(
        self,
        signature: Signature,
        *,
        inputs: Mapping[str, Any],
        demos: Iterable[Mapping[str, Any]] = (),
        json_mode: bool = False,
    ) -> list[Message]:
        """The full message list for one call."""
        messages = [Message(role="system", content=self.system_prompt(signature, json_mode=json_mode))]
        for demo in demos:
            messages += self.demo_messages(signature, demo, json_mode=json_mode)
        user = self._inputs_block(signature, inputs, missing_ok=False)
        user += "\n\n" + self.output_request(signature, json_mode=json_mode)
        messages.append(Message(role="user", content=user.strip()))
        return messages

    def demo_messages(self, signature: Signature, demo: Mapping[str, Any], *, json_mode: bool = False) -> list[Message]:
        """One demo as the user turn (its inputs) and assistant turn (its outputs) of a prompt."""
        return [Message(role="user", content=self._inputs_block(signature, demo)),
                Message(role="assistant", content=self._outputs_block(signature, demo, json_mode))]

    def system_prompt(self, signature: Signature, *, json_mode: bool = False) -> str:
        parts = ["Your input fields are:", _field_list(signature.inputs),
                 "Your output fields are:", _field_list(signature.outputs), ""]
        if json_mode:
            parts.append("Respond with a single JSON object with exactly these keys: "
                         + ", ".join(f"`{f.name}`" for f in signature.outputs) + ".")
        parts.append("All interactions will be structured in the following way, "
                     "with the appropriate values filled in.\n")
        for f in signature.inputs:
            parts.append(f"{marker(f.name)}\n{{{f.name}}}\n")
        for f in signature.outputs:
            hint = type_hint(f.type)
            parts.append(f"{marker(f.name)}\n{{{f.name}}}" + (f"        # note: {hint}" if hint else "") + "\n")
        parts.append(marker(COMPLETED))
        instructions = signature.instructions.strip() or default_instructions(signature)
        parts.append("\nIn adhering to this structure, your objective is:\n        "
                     + instructions.replace("\n", "\n        "))
        return "\n".join(parts)

    def output_request(self, signature: Signature, *, json_mode: bool = False) -> str:
        """The closing line of the user message: which outputs to write, in order."""
        if json_mode:
            keys = ", ".join(f"`{f.name}`" + (f" ({type_hint(f.type)})" if type_hint(f.type) else "")
                             for f in signature.outputs)
            return f"Respond with a JSON object with the keys {keys}."
        pieces = []
        for i, f in enumerate(signature.outputs):
            hint = type_hint(f.type)
            text = f"`{marker(f.name)}`" + (f" ({hint})" if hint else "")
            pieces.append(("starting with the field " if i == 0 else "then ") + text)
        return ("Respond with the corresponding output fields, " + ", ".join(pieces)
                + f", and then ending with the marker for `{marker(COMPLETED)}`.")

    def response_format(self, signature: Signature) -> dict[str, Any]:
        """An OpenAI `response_format` JSON schema for this signature's outputs."""
        props = {f.name: f.type.to_json_schema() for f in signature.outputs}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": re.sub(r"[^A-Za-z0-9_-]", "_", signature.name)[:64] or "outputs",
                "schema": {"type": "object", "properties": props,
                           "required": list(props), "additionalProperties": False},
            },
        }

    def reask(self, messages: list[Message], completion: str, error: str,
              signature: Signature, *, json_mode: bool = False) -> list[Message]:
        """A new message list asking again after an unparseable reply."""
        note = (f"Your previous reply could not be parsed: {error}\n\n"
                + self.output_request(signature, json_mode=json_mode))
        return [*messages, Message(role="assistant", content=completion),
                Message(role="user", content=note)]

    # -- parsing ----------------------------------------------------------------
    def parse(self, signature: Signature, text: str, *, optional: Iterable[str] = ()) -> dict[str, Any]:
        """Typed output values from a completion, or ParseError."""
        raw = extract_fields(text, signature.output_names)
        optional = set(optional)
        missing = [n for n in signature.output_names if n not in raw and n not in optional]
        if missing:
            raise ParseError(
                "missing output field(s) " + ", ".join(f"`{m}`" for m in missing)
                + " (expected " + ", ".join(marker(n) for n in signature.output_names) + ")",
                completion=text,
            )
        values: dict[str, Any] = {}
        problems = []
        for f in signature.outputs:
            if f.name not in raw:
                values[f.name] = ""
                continue
            try:
                values[f.name] = f.type.coerce(raw[f.name])
            except CoercionError as exc:
                problems.append(f"`{f.name}`: {exc}")
        if problems:
            raise ParseError("; ".join(problems), completion=text)
        return values

    # -- blocks -----------------------------------------------------------------
    def _inputs_block(self, signature: Signature, values: Mapping[str, Any], missing_ok: bool = True) -> str:
        parts = []
        for f in signature.inputs:
            if f.name not in values:
                if missing_ok:
                    continue
                raise KeyError(f.name)
            parts.append(f"{marker(f.name)}\n{format_value(values[f.name], f.type)}")
        return "\n\n".join(parts)

    def _outputs_block(self, signature: Signature, values: Mapping[str, Any], json_mode: bool) -> str:
        present = [f for f in signature.outputs if f.name in values]
        if json_mode:
            return json.dumps({f.name: values[f.name] for f in present}, ensure_ascii=False)
        parts = [f"{marker(f.name)}\n{_format_output_value(values[f.name], f.type)}" for f in present]
        parts.append(marker(COMPLETED))
        return "\n\n".join(parts)


def _field_list(fields: tuple[FieldSpec, ...]) -> str:
    lines = []
    for i, f in enumerate(fields, 1):
        line = f"{i}. `{f.name}` ({f.type.display()})"
        if f.desc:
            line += f": {f.desc}"
        lines.append(line)
    return "\n".join(lines) if lines else "(none)"


def default_instructions(signature: Signature) -> str:
    """What the system prompt says when a signature has no instructions of its own."""
    ins = ", ".join(f"`{n}`" for n in signature.input_names) or "nothing"
    outs = ", ".join(f"`{n}`" for n in signature.output_names)
    return f"Given the fields {ins}, produce the fields {outs}."


def extract_fields(text: str, names: list[str]) -> dict[str, str]:
    """Raw (uncoerced) field texts from a completion, by the most structured route that works."""
    wanted = {n.lower(): n for n in names}
    found = _from_markers(text, wanted)
    if all(n in found for n in names):
        return found
    from_json = _from_json(text, wanted)
    if from_json and len(from_json) >= len(found):
        found = {**found, **from_json}
    if all(n in found for n in names):
        return found
    from_labels = _from_labels(text, wanted)
    for k, v in from_labels.items():
        found.setdefault(k, v)
    if not found and len(names) == 1 and text.strip():
        found[names[0]] = strip_fences(text.strip()).strip()
    return found


def _from_markers(text: str, wanted: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    matches = list(MARKER.finditer(text))
    for i, m in enumerate(matches):
        key = m.group(1).lower()
        if key == COMPLETED:
            break
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        if key in wanted and wanted[key] not in out:
            out[wanted[key]] = _clean(text[m.end():end])
    return out


def _clean(section: str) -> str:
    s = section.strip()
    # A reply wrapped in a code fence leaves a dangling fence around the last field.
    s = re.sub(r"\n?```\s*$", "", s)
    s = re.sub(r"^```[\w-]*\n?", "", s)
    return s.strip()


def _from_json(text: str, wanted: dict[str, str]) -> dict[str, str]:
    candidate = strip_fences(text.strip())
    obj = None
    for attempt in (candidate, _first_braced(text)):
        if not attempt:
            continue
        try:
            obj = json.loads(attempt)
            break
        except json.JSONDecodeError:
            continue
    if not isinstance(obj, dict):
        return {}
    out = {}
    for k, v in obj.items():
        key = str(k).lower()
        if key in wanted:
            out[wanted[key]] = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
    return out


def _first_braced(text: str) -> str | None:
    start = text.find("{")
    end = text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else None


def _from_labels(text: str, wanted: dict[str, str]) -> dict[str, str]:
    label = re.compile(r"^\s*[*_#`]*\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*[*_`]*\s*[:=]\s*(.*)$")
    out: dict[str, str] = {}
    current: str | None = None
    buf: list[str] = []
    for line in text.splitlines():
        m = label.match(line)
        key = m.group(1).strip().lower().replace(" ", "_") if m else None
        if m and key in wanted:
            if current:
                out.setdefault(current, "\n".join(buf).strip())
            current, buf = wanted[key], [m.group(2)]
        elif current:
            buf.append(line)
    if current:
        out.setdefault(current, "\n".join(buf).strip())
    return out
