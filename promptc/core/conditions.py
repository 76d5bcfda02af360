"""`when:` conditions: a small expression language over earlier outputs (never Python eval).

    when: "classify.intent in ['refund_request', 'double_charge'] and not classify.urgent"
    when: "len(search.passages) == 0 or classify.confidence < 0.5"

Grammar, loosest binding first:

    condition  := or_expr
    or_expr    := and_expr ('or' and_expr)*
    and_expr   := not_expr ('and' not_expr)*
    not_expr   := 'not' not_expr | comparison
    comparison := operand [op operand]      op: == != < <= > >= in 'not in'
    operand    := literal | list | reference | 'len' '(' or_expr ')' | '(' or_expr ')'

- literals: 'single' or "double" quoted strings (only \\' \\" and \\\\ are escapes),
  integers (`3`, `-1`), floats (`0.5`, `1e-3`), `true`/`false`/`null` (also `True`/
  `False`/`None`); lists `[a, b, ...]` hold literals only.
- references: exactly `STEP.FIELD`, `input.FIELD` or `loop.VAR`; a bare name or a
  longer chain (`a.b.c`) is an error. Names may contain letters, digits, `_` and `-`.
- `len(x)` is the only function (strings and lists).
- comparisons do not chain: write `a < b and b < c`, not `a < b < c`.
- `x in y` is membership in a list or substring of a string.

Truthiness is Python's: false, null, 0, 0.0, '' and [] are false, all else is true.
`and`/`or`/`not` always give true or false. At run time a comparison Python would
reject (`null < 3`, `'a' in null`, `len(3)`) is false, and so is its `not in` form.

Conditions are parsed and type-checked when the spec loads (`Condition.parse`,
`Condition.check`); errors are `ConditionError`s with a 1-based `column`.
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from promptc.core.ref import Ref

FUNCTIONS = ("len",)
_COMPARE = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
_CONSTANTS = {"true": True, "True": True, "false": False, "False": False, "null": None, "None": None}
_KEYWORDS = {"and", "or", "not", "in", *_CONSTANTS}
_MAX_DEPTH = 64  # parentheses/`not` nesting; keeps hostile input from hitting RecursionError
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")  # ASCII only, unlike \d
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_HINTS = {"=": "; use '==' to compare", "!": "; use 'not'", "&": "; use 'and'", "|": "; use 'or'",
          "-": "; there is no arithmetic", "+": "; there is no arithmetic"}


class ConditionError(ValueError):
    """A condition does not parse; `column` is the 1-based position in its text."""

    def __init__(self, message: str, column: int):
        super().__init__(message)
        self.message, self.column = message, column


@dataclass(frozen=True)
class _Tok:
    kind: str  # str, num, name, op, end
    text: str
    value: Any
    col: int  # 1-based


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(text):
        c, col = text[i], i + 1
        if c.isspace():
            i += 1
        elif c in "'\"":
            i = _read_string(text, i, toks)
        elif num := _NUMBER.match(text, i):
            name = _NAME.match(text, i)
            if name and name.end() > num.end():  # a step name like `2nd-pass` starts with a digit
                toks.append(_Tok("name", name.group(), name.group(), col))
                i = name.end()
            else:
                s = num.group()
                toks.append(_Tok("num", s, float(s) if num.group(1) or num.group(2) else int(s), col))
                i = num.end()
        elif m := _NAME.match(text, i):
            toks.append(_Tok("name", m.group(), m.group(), col))
            i = m.end()
        elif text.startswith(("==", "!=", "<=", ">="), i):
            toks.append(_Tok("op", text[i:i + 2], None, col))
            i += 2
        elif c in "<>()[],.":
            toks.append(_Tok("op", c, None, col))
            i += 1
        else:
            raise ConditionError(f"unexpected character '{c}' at column {col}{_HINTS.get(c, '')}", col)
    toks.append(_Tok("end", "", None, len(text) + 1))
    return toks


def _read_string(text: str, i: int, toks: list[_Tok]) -> int:
    quote, start, out = text[i], i, []
    i += 1
    while i < len(text) and text[i] != quote:
        if text[i] == "\\":
            nxt = text[i + 1:i + 2]
            if nxt not in ("'", '"', "\\"):
                raise ConditionError(f"unknown escape '\\{nxt}' at column {i + 1}; only \\', \\\" "
                                     "and \\\\ are escapes", i + 1)
            out.append(nxt)
            i += 2
        else:
            out.append(text[i])
            i += 1
    if i >= len(text):
        raise ConditionError(f"unterminated string starting at column {start + 1}", start + 1)
    toks.append(_Tok("str", text[start:i + 1], "".join(out), start + 1))
    return i + 1


@dataclass(frozen=True)
class _Node:
    kind: str  # lit, list, ref, len, not, and, or, cmp
    col: int
    src: str  # the node's source text, for messages
    value: Any = None  # literal value, Ref, or comparison operator
    args: tuple[_Node, ...] = ()


class _Parser:
    def __init__(self, text: str):
        self.text, self.toks, self.pos, self.depth = text, _tokenize(text), 0, 0
        self.refs: list[Ref] = []

    @property
    def tok(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        self.pos += 1
        return self.toks[self.pos - 1]

    def node(self, kind: str, start: _Tok, value: Any = None, args: tuple[_Node, ...] = ()) -> _Node:
        prev = self.toks[self.pos - 1]
        src = self.text[start.col - 1:prev.col - 1 + len(prev.text)]
        return _Node(kind, start.col, src, value, args)

    def fail(self, tok: _Tok, hint: str = "") -> ConditionError:
        what = f"'{tok.text}'" if tok.kind != "end" else "end of condition"
        return ConditionError(f"unexpected {what} at column {tok.col}{hint}", tok.col)

    def expect(self, text: str) -> _Tok:
        if not self.at(text):
            raise self.fail(self.tok, f"; expected '{text}'")
        return self.take()

    def at(self, op: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == op

    def is_word(self, word: str, offset: int = 0) -> bool:
        tok = self.toks[min(self.pos + offset, len(self.toks) - 1)]
        return tok.kind == "name" and tok.text == word

    def parse(self) -> _Node:
        if self.tok.kind == "end":
            raise ConditionError("empty condition", 1)
        root = self.or_expr()
        if self.tok.kind != "end":
            hint = "; indexing is not supported" if self.tok.text == "[" else ""
            raise self.fail(self.tok, hint)
        return root

    def or_expr(self) -> _Node:
        return self.chain("or", lambda: self.chain("and", self.not_expr))

    def chain(self, word: str, operand: Callable[[], _Node]) -> _Node:
        start = self.tok
        left = operand()
        while self.is_word(word):
            self.take()
            left = self.node(word, start, None, (left, operand()))
        return left

    def nested(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise ConditionError(f"condition nested too deeply at column {tok.col}", tok.col)

    def not_expr(self) -> _Node:
        if not (self.is_word("not") and not self.is_word("in", 1)):
            return self.comparison()
        start = self.take()
        self.nested(start)
        inner = self.not_expr()
        self.depth -= 1
        return self.node("not", start, None, (inner,))

    def compare_op(self) -> str | None:
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE or self.is_word("in"):
            return tok.text
        if self.is_word("not"):
            if not self.is_word("in", 1):
                raise self.fail(self.toks[self.pos + 1], "; expected 'in' after 'not'")
            return "not in"
        return None

    def comparison(self) -> _Node:
        start = self.tok
        left = self.operand()
        op = self.compare_op()
        if op is None:
            return left
        self.pos += 2 if op == "not in" else 1
        right = self.operand()
        if self.compare_op() is not None:
            raise self.fail(self.tok, "; comparisons do not chain, write 'a < b and b < c'")
        return self.node("cmp", start, op, (left, right))

    def operand(self) -> _Node:
        tok = self.tok
        if tok.kind in ("str", "num"):
            self.take()
            return self.node("lit", tok, tok.value)
        if tok.kind == "name" and tok.text in _CONSTANTS:
            self.take()
            return self.node("lit", tok, _CONSTANTS[tok.text])
        if tok.kind == "op" and tok.text == "[":
            return self.list_literal()
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.nested(tok)
            inner = self.or_expr()
            self.expect(")")
            self.depth -= 1
            return inner
        if tok.kind == "name" and tok.text not in _KEYWORDS:
            return self.name()
        raise self.fail(tok, "; expected a value")

    def list_literal(self) -> _Node:
        start = self.take()
        items: list[Any] = []
        while not self.at("]"):
            if not (self.tok.kind in ("str", "num") or self.tok.text in _CONSTANTS):
                raise self.fail(self.tok, "; list items must be literals")
            items.append(self.operand().value)
            if self.at(","):
                self.take()
            elif not self.at("]"):
                raise self.fail(self.tok, "; expected ',' or ']'")
        self.take()
        return self.node("list", start, items)

    def name(self) -> _Node:
        start = self.take()
        if self.at("("):
            return self.call(start)
        if start.text in FUNCTIONS:
            raise ConditionError(f"'{start.text}' at column {start.col} is a function: write "
                                 f"{start.text}(STEP.FIELD)", start.col)
        if not self.at("."):
            raise ConditionError(
                f"bare name '{start.text}' at column {start.col}; a reference is 'STEP.FIELD', "
                f"'input.FIELD' or 'loop.VAR' (e.g. 'input.{start.text}')", start.col)
        self.take()
        name = self.take()
        if name.kind != "name":
            raise self.fail(name, f"; expected a field name after '{start.text}.'")

        ref = Ref(start.text, name.text)
        if self.at("."):
            raise self.fail(self.tok, "; a reference is exactly 'STEP.FIELD', without longer chains")
        if self.at("("):
            raise self.fail(self.tok, f"; '{ref}' is not a function, only len() can be called")
        self.refs.append(ref)
        return self.node("ref", start, ref)

    def call(self, name: _Tok) -> _Node:
        if name.text not in FUNCTIONS:
            close = difflib.get_close_matches(name.text, FUNCTIONS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "the only function is len()"
            raise ConditionError(f"unknown function '{name.text}'; {hint}", name.col)
        self.nested(self.take())
        arg = None if self.at(")") else self.or_expr()
        if arg is None or self.at(","):
            raise self.fail(self.tok, "; len() takes exactly one argument")
        self.expect(")")
        self.depth -= 1
        return self.node("len", name, None, (arg,))


@dataclass(frozen=True)
class Condition:
    """A parsed `when:` condition. Build with `Condition.parse`; `str()` gives its text."""

    text: str
    _root: _Node = field(repr=False, compare=False)
    _refs: tuple[Ref, ...] = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> Condition:
        """Parse `text`, or raise ConditionError naming the column at fault."""
        parser = _Parser(text)
        root = parser.parse()
        return cls(text, root, tuple(parser.refs))

    @property
    def refs(self) -> list[Ref]:
        """Every reference, in order of appearance."""
        return list(self._refs)

    @property
    def root(self) -> _Node:
        """The parsed expression (promptc.core.condition_check checks it statically)."""
        return self._root

    def evaluate(self, lookup: Callable[[Ref], Any]) -> bool:
        """Whether the condition holds, reading each reference's value through `lookup`."""
        return bool(_eval(self._root, lookup))

    def __str__(self) -> str:
        return self.text


def _eval(node: _Node, lookup: Callable[[Ref], Any]) -> Any:
    kind = node.kind
    if kind in ("lit", "list"):
        return node.value
    if kind == "ref":
        return lookup(node.value)
    if kind == "not":
        return not _eval(node.args[0], lookup)
    if kind == "and":
        return bool(_eval(node.args[0], lookup)) and bool(_eval(node.args[1], lookup))
    if kind == "or":
        return bool(_eval(node.args[0], lookup)) or bool(_eval(node.args[1], lookup))
    if kind == "len":
        value = _eval(node.args[0], lookup)
        return len(value) if isinstance(value, (str, list, tuple, dict)) else None
    left, right = _eval(node.args[0], lookup), _eval(node.args[1], lookup)
    try:
        return _OPS[node.value](left, right)
    except TypeError:  # null < 3, 'a' in null...: false, never an exception mid-run
        return False


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}
