"""Reading a spec file: safe YAML with positions, duplicate-key checks and ${VAR} interpolation.

Positions and values come from one parse: the text is composed into a node tree with
PyYAML's SafeLoader, then values are built from that tree here, recording where every
node starts. Nothing in a spec is ever evaluated as Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from promptc.errors import Location, SpecError

if TYPE_CHECKING:
    pass

PathTuple = tuple[Any, ...]

_TAG = "tag:yaml.org,2002:"
# Plain values only: anything else (python/*, binary, set, custom !tags) is refused.
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null")}
_MERGE_TAG = _TAG + "merge"
# Alias expansion can grow a small file exponentially ("billion laughs"); a spec never
# legitimately needs this many nodes.
_MAX_NODES = 1_000_000
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_\-/:@+]+")


def format_path(path: PathTuple) -> str:
    """Render a path tuple as `program[0].signature` or `signatures.solve.outputs.answer`."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            # Keys with dots, spaces or non-string keys are quoted so the path stays unambiguous.
            out += f"[{part!r}]"
    return out


class PositionMap:
    """Where each node of a parsed spec sits: path tuple -> 1-based (line, column).

    Values and keys are tracked separately: a mapping entry's key position is what an
    "unknown key" error points at, its value position is what a type error points at.
    """

    def __init__(self, file: str | None = None) -> None:
        self.file = file
        self._values: dict[PathTuple, tuple[int, int]] = {}
        self._keys: dict[PathTuple, tuple[int, int]] = {}

    def set(self, path: PathTuple, line: int, column: int, *, key: bool = False) -> None:
        """Record the 1-based position of the value (or key) at `path`."""
        (self._keys if key else self._values)[tuple(path)] = (line, column)

    def get(self, path: PathTuple, *, key: bool = False) -> tuple[int, int] | None:
        """The exact recorded position of `path`, or None (no ancestor fallback)."""
        return (self._keys if key else self._values).get(tuple(path))

    def __contains__(self, path: object) -> bool:
        return path in self._values

    def locate(self, path: PathTuple, *, key: bool = False, file: str | None = None) -> Location:
        """A Location for `path`, falling back to the nearest ancestor with a position."""
        path = tuple(path)
        pos = self._keys.get(path) if key else None
        probe = path
        while pos is None:
            pos = self._values.get(probe)
            if pos is None and key:
                pos = self._keys.get(probe)
            if pos is None:
                if not probe:
                    break
                probe = probe[:-1]
        line, column = pos if pos else (None, None)
        return Location(file=file or self.file, line=line, column=column,
                        path=format_path(path) or None)


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: `2024-01-01` stays the string the user typed."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != _TAG + "timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return repr(value)


class _Builder:
    """Builds Python values from a composed node tree, recording positions on the way."""

    def __init__(self, loader: _Loader, positions: PositionMap, file: str) -> None:
        self.loader = loader
        self.positions = positions
        self.file = file
        self.count = 0
        self.active: set[int] = set()  # nodes being built right now: detects recursive aliases

    def fail(self, node: Node, message: str, path: PathTuple) -> SpecError:
        loc = Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1,
                       format_path(path) or None)
        return SpecError([(loc, message)])

    def build(self, node: Node, path: PathTuple) -> Any:
        self.positions.set(path, node.start_mark.line + 1, node.start_mark.column + 1)
        self.count += 1
        if self.count > _MAX_NODES:
            raise self.fail(node, "spec is too large (too many nodes after expanding aliases)", path)
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                raise self.fail(node, f"YAML tag {_short_tag(node.tag)!r} is not allowed "
                                "(only plain strings, numbers, booleans, null, lists and mappings)",
                                path)
            try:
                return self.loader.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError) as exc:  # e.g. `!!int abc`
                raise self.fail(node, f"cannot read {node.value!r} as {_short_tag(node.tag)}: "
                                f"{getattr(exc, 'problem', None) or exc}", path) from None
        if id(node) in self.active:
            raise self.fail(node, "recursive alias: a node contains itself", path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                self._check_tag(node, "seq", path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                self._check_tag(node, "map", path)
                return self._mapping(node, path)
        finally:
            self.active.discard(id(node))
        raise self.fail(node, f"unsupported YAML node {type(node).__name__}", path)

    def _check_tag(self, node: Node, kind: str, path: PathTuple) -> None:
        if node.tag != _TAG + kind:
            raise self.fail(node, f"YAML tag {_short_tag(node.tag)!r} is not allowed "
                            "(only plain strings, numbers, booleans, null, lists and mappings)",
                            path)

    def _key(self, key_node: Node, path: PathTuple) -> Any:
        if not isinstance(key_node, ScalarNode):
            raise self.fail(key_node, "mapping keys must be plain scalars, not lists or mappings",
                            path)
        if key_node.tag not in _SCALAR_TAGS:
            raise self.fail(key_node, f"YAML tag {_short_tag(key_node.tag)!r} is not allowed", path)
        try:
            return self.loader.construct_object(key_node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            raise self.fail(key_node, f"cannot read key {key_node.value!r}: "
                            f"{getattr(exc, 'problem', None) or exc}", path) from None

    def _mapping(self, node: MappingNode, path: PathTuple) -> dict[Any, Any]:
        merges: list[Node] = []
        explicit: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                if isinstance(value_node, SequenceNode):
                    merges.extend(value_node.value)
                else:
                    merges.append(value_node)
            else:
                explicit.append((key_node, value_node))
        result: dict[Any, Any] = {}
        # `<<: [*a, *b]`: earlier sources win over later ones, explicit keys win over all.
        # Merged entries are built first so explicit keys overwrite their positions too.
        for source in reversed(merges):
            if not isinstance(source, MappingNode):
                raise self.fail(source, "a merge key '<<' needs a mapping or a list of mappings",
                                path)
            if id(source) in self.active:
                raise self.fail(source, "recursive alias: a node contains itself", path)
            self.active.add(id(source))
            try:
                result.update(self._mapping(source, path))
            finally:
                self.active.discard(id(source))
        seen: set[Any] = set()
        for key_node, value_node in explicit:
            key = self._key(key_node, path)
            if key in seen:
                raise self.fail(key_node, f"duplicate key {key!r} (it is already set above)",
                                (*path, key))
            seen.add(key)
            self.positions.set((*path, key), key_node.start_mark.line + 1,
                               key_node.start_mark.column + 1, key=True)
            result[key] = self.build(value_node, (*path, key))
        return result


def _yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> SpecError:
    """One clean located line for a YAML syntax error (no snippet, no traceback)."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line = before.count("\n") + 1
        column = exc.position - (before.rfind("\n") + 1) + 1
        return SpecError([(Location(file, line, column),
                           f"unacceptable character #x{exc.character:04x}: {exc.reason}")])
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    cmark = getattr(exc, "context_mark", None)
    message = problem
    if context:
        where = ""
        if cmark is not None and (mark is None or cmark.line != mark.line
                                  or cmark.column != mark.column):
            where = f" started at line {cmark.line + 1}, column {cmark.column + 1}"
        message += f" ({context}{where})"
    if "'\\t'" in problem:
        message += "; YAML does not allow tabs for indentation, use spaces"
    elif "<block end>" in problem:
        message += "; check the indentation"
    at_line = mark.line + 1 if mark is not None else None
    at_column = mark.column + 1 if mark is not None else None
    return SpecError([(Location(file, at_line, at_column), message)])


def load_yaml_text(text: str, file: str = "<string>") -> tuple[Any, PositionMap]:
    """Parse spec text safely; return (data, positions). Raises SpecError on any problem."""
    positions = PositionMap(file)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        # The reader checks for unprintable characters already in the constructor.
        loader = _Loader(text)
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, file) from None
    except RecursionError:  # the scanner stopped where the nesting became too deep: name it
        raise SpecError([(Location(file, loader.line + 1, loader.column + 1),
                          "spec is nested too deeply (lists or mappings inside each other)")]) from None
    try:
        if root is None or (isinstance(root, ScalarNode) and root.tag == _TAG + "null"
                            and root.value == ""):
            raise SpecError([(Location(file, 1, 1), "spec file is empty")])
        data = _Builder(loader, positions, file).build(root, ())
    except RecursionError:
        raise SpecError([(Location(file, 1, 1), "spec is nested too deeply")]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError([(positions.locate((), file=file),
                          f"the top level of a spec must be a mapping (key: value), "
                          f"got {_describe(data)}")])
    return data, positions


def load_yaml(path: str | Path) -> tuple[Any, PositionMap]:
    """Read and parse a spec file; return (data, positions). Raises SpecError on any problem."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError([(Location(file), f"cannot read spec file: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1
        raise SpecError([(Location(file, line, column),
                          f"file is not valid UTF-8 (bad byte 0x{raw[exc.start]:02x}); "
                          "save it as UTF-8")]) from None
    return load_yaml_text(text, file)


_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}?")
_VAR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def _interpolate_str(s: str, env: Mapping[str, str], problems: list[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        body = m.group(1)
        if not m.group(0).endswith("}"):
            problems.append(f"unterminated '${{' in {s!r} (write '$${{' for a literal '${{')")
            return m.group(0)
        v = _VAR.fullmatch(body)
        if v is None or "${" in (v.group(2) or ""):
            problems.append(f"malformed reference '${{{body}}}': expected ${{NAME}} or "
                            "${NAME:-default} (write '$${' for a literal '${')")
            return m.group(0)
        name, default = v.group(1), v.group(2)
        value = env.get(name)
        if default is not None:
            return value if value else default  # like the shell: unset or empty -> default
        if value is None:
            problems.append(f"environment variable {name} is not set "
                            f"(use ${{{name}:-default}} for a default)")
            return ""
        return value

    return _REF.sub(repl, s)


def interpolate(data: Any, positions: PositionMap, env: Mapping[str, str], file: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in every string value; `$${` is a literal `${`.

    Returns new data (the input is not mutated). Results are always strings: no type
    guessing. All unset variables are reported together in one SpecError.
    """
    problems: list[tuple[Location, str]] = []

    def walk(node: Any, path: PathTuple) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, str) and "$" in node:
            found: list[str] = []
            out = _interpolate_str(node, env, found)
            problems.extend((positions.locate(path, file=file), msg) for msg in found)
            return out
        return node

    result = walk(data, ())
    if problems:
        raise SpecError(problems)
    return result
