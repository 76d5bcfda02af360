"""Message templates for export: each LM call's messages split into literal text and input slots.

promptc's own adapter renders the messages (with a unique sentinel as each input's value), so
the text of an export can never drift from what promptc sends; the sentinels are then cut out
and become slots. Each format only decides how to spell a slot and protect the literal text:

    python format string   `{name}`, literal `{` / `}` doubled
    Jinja2                 `{{ name }}`, literal `{{`, `{%`, `{#` (and `\\r`) emitted as expressions
    Markdown               `{name}`, for reading only
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from promptc import __version__
from promptc.artifacts.program_file import ProgramArtifact, StepArtifact
from promptc.core.adapter import ChatAdapter
from promptc.core.modules import Predict, placed_predictors

VALUE_FORMAT = (
    "Each placeholder stands for the whole input value, formatted as promptc does "
    "(promptc.core.adapter.format_value(value, field_type)): a string as is; a list of strings "
    "given to a list-typed input as one line per item, '[1] «first»\\n[2] «second»' ('[]' when "
    "empty); a boolean as True or False; anything else (numbers, objects, other lists) as JSON "
    "with non-ASCII characters kept (json.dumps(value, ensure_ascii=False))."
)


@dataclass(frozen=True)
class Slot:
    """Where one input's formatted value goes."""

    name: str


Segment = str | Slot


@dataclass
class MessageTemplate:
    """One chat message as literal text and slots."""

    role: str
    segments: list[Segment]


@dataclass
class StepTemplate:
    """One predictor's full chat template plus what a caller needs to fill and send it.

    `name` is the predictor's (the step's own name when the step makes one kind of LM
    call; `STEP.react`, `STEP.extract`, ... inside composite steps).
    """

    name: str
    step: StepArtifact
    module: Predict
    model: str | None
    messages: list[MessageTemplate]
    response_format: dict[str, Any] | None
    embedding_model: str | None = None

    @property
    def fields(self) -> dict[str, list[dict[str, Any]]]:
        """Input and output field descriptions as the LM sees them (CoT includes reasoning)."""
        sig = self.module.signature

        def describe(f: Any, source: str | None = None) -> dict[str, Any]:
            out = {"name": f.name, "type": f.type.display(), "desc": f.desc,
                   "schema": f.type.to_json_schema()}
            if source:
                out["source"] = source
            return out

        return {"inputs": [describe(f, self.step.bindings.get(f.name)) for f in sig.inputs],
                "outputs": [describe(f) for f in sig.outputs]}

    def demo_selection(self, adapter: ChatAdapter | None = None) -> dict[str, Any] | None:
        """The per-input demo pool and the rule that picks from it (None for fixed demos).

        The step's `messages` show the pool's first k demos (what a call gets when nothing
        matches); to send what promptc sends, replace those demo turns with the turns of the
        k pool demos nearest the inputs, least similar first.
        """
        selector = self.module.selector
        if selector is None:
            return None
        adapter = adapter or ChatAdapter()
        rule = (f"Replace the {len(selector.static_demos())} demo turn pairs after the system message with "
                f"the `messages` of the {selector.k} pool demos most similar to the call's inputs, least "
                "similar first (the most similar just before the final user message). Similarity is "
                "computed on the text of the `keys` inputs (each formatted value, joined by newlines): "
                + ("cosine of embeddings by `embedding_model`, the pool's vectors given in `vectors`."
                   if selector.similarity == "embedding" else
                   "BM25 (k1=1.2, b=0.75) over lower-cased words (runs of letters and digits), the pool as "
                   "the corpus.") + " Ties go to the earlier pool demo.")
        doc: dict[str, Any] = {
            "rule": rule, "k": selector.k, "keys": selector.keys, "similarity": selector.similarity,
            "pool": [{"demo": d, "messages": [m.model_dump() for m in adapter.demo_messages(
                self.module.signature, d, json_mode=self.module.json_mode)]} for d in selector.pool],
        }
        if selector.similarity == "embedding":
            doc["embedding_model"] = self.embedding_model
            doc["vectors"] = selector.vectors
        return doc


def step_templates(artifact: ProgramArtifact, adapter: ChatAdapter | None = None) -> list[StepTemplate]:
    """Every predictor's chat template, in program order (retrieve steps send no messages)."""
    adapter = adapter or ChatAdapter()
    program = artifact.build({})
    by_name = {s.name: s for s in artifact.steps}
    out = []
    for step in program.steps:
        declared = by_name[step.name]
        lm = artifact.lms.get(declared.lm or "default")
        for name, predictor in placed_predictors(step.module, step.name):
            response_format = adapter.response_format(predictor.signature) if predictor.json_mode else None
            shown = step.module.shown_signature_of(predictor)
            out.append(StepTemplate(name=name, step=declared, module=predictor, model=lm.model if lm else None,
                                    messages=_message_templates(predictor, adapter, shown),
                                    response_format=response_format,
                                    embedding_model=artifact.embedder.model if artifact.embedder else None))
    return out


def _message_templates(module: Predict, adapter: ChatAdapter, shown: Any = None) -> list[MessageTemplate]:
    names = module.signature.input_names
    for _ in range(8):
        # A random token per attempt: demos or instructions can hold any text, but not a
        # 128-bit value chosen after they were written. Checked anyway, and retried.
        token = uuid.uuid4().hex
        sentinels = {f"\u27e6{token}:{i}\u27e7": name for i, name in enumerate(names)}
        # A per-input pool shows its static view: its first k demos (see demo_selection).
        static = module.selector.static_demos() if module.selector is not None else None
        messages = module.render({name: s for s, name in sentinels.items()}, adapter, shown=shown,
                                 selected=static)
        *head, last = messages
        if (all(token not in m.content for m in head)
                and last.content.count(token) == len(names)
                and all(last.content.count(s) == 1 for s in sentinels)):
            break
    else:  # pragma: no cover - needs eight uuid4 collisions
        raise RuntimeError(f"step '{module.name}': could not place input placeholders")
    templates = [MessageTemplate(m.role, [m.content]) for m in head]
    if not names:
        return [*templates, MessageTemplate(last.role, [last.content])]
    pieces = re.split("(" + "|".join(re.escape(s) for s in sentinels) + ")", last.content)
    segments: list[Segment] = [Slot(sentinels[p]) if p in sentinels else p for p in pieces]
    return [*templates, MessageTemplate(last.role, [s for s in segments if s != ""])]


# -- spellings -------------------------------------------------------------------------

def python_template(segments: list[Segment]) -> str:
    """A `str.format` template: `{name}` slots, literal braces doubled."""
    return "".join("{" + s.name + "}" if isinstance(s, Slot)
                   else s.replace("{", "{{").replace("}", "}}") for s in segments)


# `{` opens a Jinja tag when followed by `{`, `%` or `#`, or at a chunk's end (a slot's
# `{{` follows); Jinja also rewrites `\r` and `\r\n` in template text to `\n`.
_JINJA_UNSAFE = re.compile(r"\{(?=[{%#]|\Z)|\r")


def jinja_template(segments: list[Segment]) -> str:
    """A Jinja2 template: `{{ name }}` slots, literal text protected so it renders verbatim."""
    parts = []
    for s in segments:
        if isinstance(s, Slot):
            parts.append("{{ " + s.name + " }}")
        else:
            parts.append(_JINJA_UNSAFE.sub(
                lambda m: '{{ "{" }}' if m.group() == "{" else '{{ "\\r" }}', s))
    text = "".join(parts)
    # Jinja drops one trailing newline of a template unless told to keep it.
    if text.endswith("\n"):
        text = text[:-1] + '{{ "\\n" }}'
    return text


def jinja_chat_template(template: StepTemplate) -> str:
    """One Jinja2 file that renders the whole conversation as a JSON list of messages."""
    lines = [f"{{#- promptc chat template for step '{template.name}'. Render with jinja2 "
             "(autoescape off), passing each input formatted as promptc does; the output is a "
             "JSON list of {role, content} messages. -#}"]
    for i, m in enumerate(template.messages):
        lines.append(f"{{%- set message_{i} %}}{jinja_template(m.segments)}{{% endset %}}")
    listed = ", ".join(f'{{"role": {json.dumps(m.role)}, "content": message_{i}}}'
                       for i, m in enumerate(template.messages))
    lines.append("{{- [" + listed + "] | tojson }}")
    return "\n".join(lines) + "\n"


def readable_template(segments: list[Segment]) -> str:
    """The message with `{name}` slots and nothing escaped: for people, not for code."""
    return "".join("{" + s.name + "}" if isinstance(s, Slot) else s for s in segments)


# -- READMEs and Markdown ------------------------------------------------------------

_FORMAT_VALUE_PY = '''```python
import json

def format_value(value, list_typed=False):
    """Standalone copy of promptc.core.adapter.format_value."""
    if isinstance(value, str):
        return value
    if list_typed and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\\n".join(f"[{i}] «{v}»" for i, v in enumerate(value, 1)) if value else "[]"
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value, ensure_ascii=False)
```'''

_VALUES_AND_REPLIES = f"""## Input values

{VALUE_FORMAT}

With promptc installed, use `promptc.core.adapter.format_value(value, FieldType.parse(type))`
(`FieldType` is in `promptc.core.types`);
without it, this is the same function (`list_typed` is true for a `list[...]` input):

{_FORMAT_VALUE_PY}

An input's `source` says where promptc takes it from: `input.FIELD` is a program input,
`STEP.FIELD` the parsed output of an earlier step (steps run in the order listed above).

## Replies

The model is asked to answer with one `[[ ## field ## ]]` marker line per output, each
followed by its value, and to end with `[[ ## completed ## ]]`. Steps with a
`response_format` (JSON mode) answer with one JSON object instead.
"""


def _head(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
          fmt: str, title: str, ext: str) -> list[str]:
    lines = [f"# {artifact.name}: {title}", "",
             f"Exported by promptc {__version__} (format `{fmt}`) from a program compiled with "
             f"promptc {artifact.promptc_version}. Files are listed in `manifest.json`.", "",
             "| step | module | file | model | signature |", "|---|---|---|---|---|"]
    for t in templates:
        lines.append(f"| {_cell(t.name)} | {t.step.module} | [{stems[t.name]}{ext}]"
                     f"({stems[t.name]}{ext}) | {_cell(t.model or '')} | "
                     f"`{_cell(t.module.signature.render())}` |")
    return [*lines, ""]


def openai_readme(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str]) -> str:
    """README.md of the openai-messages format."""
    example = stems[templates[0].name] if templates else "STEP"
    body = f"""## Step files

Each `STEP.json` holds `messages` (the full chat: system prompt, demo turns, final user
message), `inputs` / `outputs` (name, type, description, JSON schema, `source`),
`response_format` (pass it as is to the Chat Completions API; null unless JSON mode),
`model` (when known) and `value_format`.

Every message `content` is a **Python format string**: `{{name}}` stands for an input's
formatted value and literal braces are doubled (`{{{{`, `}}}}`). Call `.format(**values)` on
**every** message, system and demo turns included: they have no placeholders but do have
doubled braces.

```python
import json

step = json.load(open("{example}.json", encoding="utf-8"))
raw = {{...}}  # the step's input values, by name (format_value is defined below)
values = {{f["name"]: format_value(raw[f["name"]], f["type"].startswith("list["))
          for f in step["inputs"]}}
messages = [{{"role": m["role"], "content": m["content"].format(**values)}}
            for m in step["messages"]]
```
"""
    return "\n".join(_head(artifact, templates, stems, "openai-messages", "OpenAI chat templates",
                           ".json")) + "\n" + body + "\n" + _VALUES_AND_REPLIES


def jinja_readme(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str]) -> str:
    """README.md of the jinja format."""
    example = stems[templates[0].name] if templates else "STEP"
    body = f"""## Step files

- `STEP.messages.json`: like the openai-messages export (`inputs`, `outputs`,
  `response_format`, `value_format`), but each message `content` is a Jinja2 template.
- `STEP.jinja`: the whole conversation in one Jinja2 template; it renders to a JSON list of
  `{{"role", "content"}}` messages.

Inputs appear as `{{{{ name }}}}`. Literal text that Jinja would read as markup (`{{{{`, `{{%`,
`{{#`, a `{{` just before a placeholder), carriage returns and a final newline are written as
string expressions such as `{{{{ "{{" }}}}`, so the templates render to the exact text. Use a
default `jinja2.Environment` (no autoescape, no `trim_blocks` / `lstrip_blocks`);
`StrictUndefined` makes a missing input an error instead of an empty string.

```python
import json
import jinja2

env = jinja2.Environment(undefined=jinja2.StrictUndefined)
step = json.load(open("{example}.messages.json", encoding="utf-8"))
raw = {{...}}  # the step's input values, by name (format_value is defined below)
values = {{f["name"]: format_value(raw[f["name"]], f["type"].startswith("list["))
          for f in step["inputs"]}}
messages = [{{"role": m["role"], "content": env.from_string(m["content"]).render(**values)}}
            for m in step["messages"]]
# or, the whole chat at once:
template = open("{example}.jinja", encoding="utf-8").read()
messages = json.loads(env.from_string(template).render(**values))
```
"""
    return "\n".join(_head(artifact, templates, stems, "jinja", "Jinja2 chat templates",
                           ".jinja")) + "\n" + body + "\n" + _VALUES_AND_REPLIES


def finetune_readme(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str],
                    rows: dict[str, int], notes: list[str], from_traces: bool) -> str:
    """README.md of the finetune-jsonl format."""
    source = "the compile's teacher traces" if from_traces else "each step's demos"
    lines = _head(artifact, templates, stems, "finetune-jsonl", "fine-tuning data", ".jsonl")
    lines += ["## Rows", "",
              f"Rows come from {source}. Each line of `STEP.jsonl` is one chat-format training "
              "example for an OpenAI-compatible fine-tuning API:", "",
              '    {"messages": [{"role": "system", ...}, {"role": "user", ...}, '
              '{"role": "assistant", ...}]}', "",
              "- system: the step's system prompt (field structure and instructions);",
              "- user: the inputs exactly as promptc writes its final user message, closing line "
              "included;",
              "- assistant: the outputs as promptc expects them back: `[[ ## field ## ]]` sections "
              "ending with `[[ ## completed ## ]]` (a JSON object for JSON-mode steps).", "",
              "The prompts carry no demos: a fine-tuned model is then called with the same system "
              "prompt and user message, without few-shot turns.", "",
              "| step | rows |", "|---|---|"]
    lines += [f"| {_cell(t.name)} | {rows.get(t.name, 0)} |" for t in templates]
    if notes:
        lines += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def markdown_index(artifact: ProgramArtifact, templates: list[StepTemplate], stems: dict[str, str]) -> str:
    """README.md of the markdown format: the program at a glance."""
    lines = _head(artifact, templates, stems, "markdown", "prompts", ".md")
    lines += ["Each step file shows the signature, instructions, demos and the messages promptc "
              "sends, with inputs as `{name}` placeholders.", ""]
    return "\n".join(lines)


def step_markdown(t: StepTemplate) -> str:
    """One step, readable: signature, instructions, demos, and its messages as a template."""
    sig = t.module.signature
    cot = " (adds a `reasoning` output)" if "reasoning" in sig.output_names and not \
        t.step.signature.output("reasoning") else ""
    lines = [f"# Step `{t.name}`", "", f"- Module: `{t.step.module}`{cot}"]
    if t.model:
        lines.append(f"- Model: `{t.model}` (LM `{t.step.lm or 'default'}`)")
    lines += [f"- JSON mode: {'yes' if t.module.json_mode else 'no'}",
              f"- Signature: `{sig.render()}`", "", "## Inputs", "",
              "| name | type | from | description |", "|---|---|---|---|"]
    lines += [f"| {f.name} | `{_cell(f.type.display())}` | {_cell(t.step.bindings.get(f.name, ''))} "
              f"| {_cell(f.desc)} |" for f in sig.inputs]
    lines += ["", "## Outputs", "", "| name | type | description |", "|---|---|---|"]
    lines += [f"| {f.name} | `{_cell(f.type.display())}` | {_cell(f.desc)} |" for f in sig.outputs]
    instructions = t.module.signature.instructions.strip()
    lines += ["", "## Instructions", ""]
    lines += [*_fenced(instructions, "text")] if instructions else [
        "(none: promptc asks for the outputs given the inputs)"]
    lines += ["", f"## Demos ({len(t.module.demos)})", ""]
    if not t.module.demos:
        lines += ["(none)", ""]
    for i, demo in enumerate(t.module.demos, 1):
        lines += [f"### Demo {i}", "", *_fenced(json.dumps(demo, indent=2, ensure_ascii=False), "json"), ""]
    selection = t.demo_selection()
    if selection is not None:
        pool = selection["pool"]
        lines += [f"## Demo pool ({len(pool)}; {selection['k']} chosen per input)", "", selection["rule"], "",
                  "The messages below show the first k demos of the pool.", ""]
        for i, entry in enumerate(pool, 1):
            lines += [f"### Pool demo {i}", "", *_fenced(json.dumps(entry["demo"], indent=2, ensure_ascii=False),
                                                          "json"), ""]
    lines += ["## Messages", "",
              "What promptc sends, with each input shown as `{name}` (its formatted value); other "
              "braces are literal text.", ""]
    for i, m in enumerate(t.messages, 1):
        lines += [f"### {i}. {m.role}", "", *_fenced(readable_template(m.segments), "text"), ""]
    if t.response_format:
        lines += ["## response_format", "", *_fenced(json.dumps(t.response_format, indent=2), "json"), ""]
    return "\n".join(lines)


def _fenced(text: str, lang: str) -> list[str]:
    # A fence longer than any backtick run inside, so the text can hold code fences itself.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + lang, text, fence]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")
