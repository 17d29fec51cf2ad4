# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Golem Base query language, as golembase_queryEntities takes it.

    expr   := and ('||' and)*
    and    := term ('&&' term)*
    term   := '(' expr ')' | IDENT OP VALUE
    OP     := '=' | '!=' | '<' | '<=' | '>' | '>='
    VALUE  := "double-quoted string" | unsigned integer

As in golem-base-geth, the literal's type picks the index: a string compares with the
entity's string annotation of that name, a number with its numeric annotation. An entity
without that annotation matches no comparison, ``!=`` included. Identifiers follow the node's
annotation-key rule (a letter or ``_``, then letters, digits or ``_``). Standard library only:
tests load it without the provider's virtualenv.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Union

# The node's identifier rule, [\p{L}_][\p{L}\p{N}_]*, in Python's Unicode classes.
IDENT = r"[^\W\d]\w*"
ANNOTATION_KEY = re.compile(rf"^{IDENT}$")
MAX_UINT64 = 2 ** 64 - 1

_TOKENS = re.compile(rf"""
    (?P<ws>\s+)
  | (?P<lparen>\() | (?P<rparen>\))
  | (?P<and>&&) | (?P<or>\|\|)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>[0-9]+)
  | (?P<ident>{IDENT})
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt,
    "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class QueryError(ValueError):
    """The query does not parse; the node answers such a query with an error."""


@dataclass(frozen=True)
class Compare:
    key: str
    op: str
    value: str | int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "&&" or "||"
    terms: tuple["Node", ...]


Node = Union[Compare, BoolOp]


class Annotated:
    """What a query is evaluated against: an entity's two annotation maps."""

    def __init__(self, strings: Mapping[str, str], numbers: Mapping[str, int]) -> None:
        self.strings, self.numbers = strings, numbers


def _unquote(literal: str) -> str:
    # Go's strconv.Unquote handles more escapes; these are the ones a query string needs.
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), literal[1:-1])


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKENS.match(text, pos)
        if not match:
            raise QueryError(f"unexpected character {text[pos]!r} at offset {pos}")
        pos = match.end()
        if match.lastgroup != "ws":
            out.append((match.lastgroup or "", match.group()))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of query"
            raise QueryError(f"expected {kind}, found {found!r}")
        self.pos += 1
        return self.tokens[self.pos - 1][1]

    def expr(self) -> Node:
        return self._chain("or", self.conjunction)

    def conjunction(self) -> Node:
        return self._chain("and", self.term)

    def _chain(self, kind: str, item: Callable[[], Node]) -> Node:
        terms = [item()]
        while self.peek() == kind:
            self.take(kind)
            terms.append(item())
        return terms[0] if len(terms) == 1 else BoolOp("&&" if kind == "and" else "||", tuple(terms))

    def term(self) -> Node:
        if self.peek() == "lparen":
            self.take("lparen")
            inner = self.expr()
            self.take("rparen")
            return inner
        key = self.take("ident")
        op = self.take("op")
        if self.peek() == "string":
            return Compare(key, op, _unquote(self.take("string")))
        number = int(self.take("number"))
        if number > MAX_UINT64:
            raise QueryError(f"{number} does not fit the node's unsigned 64-bit numbers")
        return Compare(key, op, number)


def parse(text: str) -> Node:
    parser = _Parser(text)
    node = parser.expr()
    if parser.pos != len(parser.tokens):
        raise QueryError(f"unexpected {parser.tokens[parser.pos][1]!r} after a complete query")
    return node


def matches(node: Node, entity: Annotated) -> bool:
    if isinstance(node, BoolOp):
        combine = all if node.op == "&&" else any
        return combine(matches(term, entity) for term in node.terms)
    index: Mapping[str, object] = entity.strings if isinstance(node.value, str) else entity.numbers
    if node.key not in index:
        return False
    return _COMPARE[node.op](index[node.key], node.value)
