"""Source text -> AST, or syntax diagnostics.

Contract: `parse_source` never raises for any input string; it returns either a
`Policy` or at least one error diagnostic. The Lark parser is built once per
process (LALR, strict). Comments are collected with their positions for the
formatter, by the lexer itself (a callback on the ignored COMMENT terminal), so
a `#` inside a string is never taken for one.
"""

from __future__ import annotations

import contextvars
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import lark
from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from oxdeai.cachedir import private_dir
from oxdeai.dsl import ast as A
from oxdeai.dsl.build import TreeBuilder
from oxdeai.dsl.diagnostics import Diagnostic, error
from oxdeai.dsl.strings import quote, unescape

__all__ = ["MAX_NESTING", "Comment", "ParseResult", "parse_source", "quote", "unescape"]


@dataclass(frozen=True, slots=True)
class Comment:
    text: str  # including the leading '#'
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ParseResult:
    policy: A.Policy | None
    diagnostics: tuple[Diagnostic, ...]
    comments: tuple[Comment, ...]


# The parser is shared, its lexer callback fixed at construction: each parse
# points the callback at its own list (a context variable, so threads and
# tasks parsing at once never mix their comments).
_comment_sink: contextvars.ContextVar[list[Comment]] = contextvars.ContextVar("oxdeai_comment_sink")


def _keep_comment(token: Token) -> Token:
    _comment_sink.get().append(Comment(str(token), token.line or 0, token.column or 0))
    return token


GRAMMAR_OPTIONS: dict[str, Any] = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}


def grammar_text() -> str:
    return resources.files("oxdeai.grammar").joinpath("oxp.lark").read_text(encoding="utf-8")


def grammar_cache_file() -> str | bool:
    """Where Lark keeps its analysis of the grammar between runs (a pickle, so only in a
    directory this user owns that no one else may write; else no cache). A test builds
    the grammar with `strict=True` (no two terminals may collide), so it is not redone at
    every start."""
    base = private_dir()
    if base is None:
        return False
    return str(base / f"grammar-lark-{lark.__version__}.cache")


@functools.cache
def _parser() -> tuple[lark.Lark, dict[str, str]]:
    parser = lark.Lark(grammar_text(), **GRAMMAR_OPTIONS, lexer_callbacks={"COMMENT": _keep_comment},
                       cache=grammar_cache_file())
    display = {}
    for terminal in parser.terminals:
        pattern = terminal.pattern
        if isinstance(pattern, lark.lexer.PatternStr):
            display[terminal.name] = f"`{pattern.value}`"
    display.update(
        NAME="a name", INT="an integer", STRING="a string", DURATION="a duration like `10m`",
        CMP_OP="a comparison", ADD_OP="`+` or `-`", MUL_OP="`*`, `/` or `%`",
        ASSIGN_OP="`+=`, `-=` or `=`", RULE_KIND="`allow` or `deny`", DOT_STAR="`.*`",
        LE="`<=`", EQUAL="`=`", **{"$END": "end of file"},
    )
    return parser, display


def parse_source(text: str) -> ParseResult:
    parser, display = _parser()
    comments: list[Comment] = []
    reset = _comment_sink.set(comments)
    try:
        tree = parser.parse(text)
    except UnexpectedInput as exc:
        return ParseResult(None, (_syntax_diagnostic(exc, text, display),), tuple(comments))
    finally:
        _comment_sink.reset(reset)
    too_deep = _too_deep(tree)
    if too_deep is not None:
        return ParseResult(None, (too_deep,), tuple(comments))
    builder = TreeBuilder()
    try:
        policy = builder.transform(tree)
    except (VisitError, RecursionError) as exc:  # a bug in the builder: report, never crash
        span = A.Span(1, 1, 1, 2)
        detail = exc.orig_exc if isinstance(exc, VisitError) else exc
        return ParseResult(None, (error("E199", f"internal parser error: {detail}", span),), ())
    if builder.errors:
        return ParseResult(None, tuple(builder.errors), tuple(comments))
    return ParseResult(policy, (), tuple(comments))


MAX_NESTING = 250  # levels of one expression's syntax tree; every later pass recurses over it


def _too_deep(tree: lark.Tree) -> Any:
    """E106 at the first place the syntax tree nests deeper than MAX_NESTING, else None.
    Walked without recursion, so any depth is measured safely."""
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, lark.Tree):
            continue
        if depth > MAX_NESTING:
            line = getattr(node.meta, "line", 1) if not node.meta.empty else 1
            column = getattr(node.meta, "column", 1) if not node.meta.empty else 1
            return error("E106", f"this expression nests more than {MAX_NESTING} levels deep",
                         A.Span(line, column, line, column + 1),
                         "split it: name parts with `const`, or write a long list as a set (`x in {...}`)")
        stack.extend((child, depth + 1) for child in node.children)
    return None


def _syntax_diagnostic(exc: UnexpectedInput, text: str, display: dict[str, str]) -> Diagnostic:
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        if char == '"':
            return error("E102", "unterminated string", A.Span(line, column, line, column + 1),
                         'close the string with `"` on the same line')
        return error("E101", f"unexpected character `{char}`", A.Span(line, column, line, column + 1))
    expected = sorted({display.get(name, name) for name in getattr(exc, "expected", set())})
    hint = _expected_text(expected)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        body = text.rstrip()
        end_line = body.count("\n") + 1
        end_col = len(body) - (body.rfind("\n") + 1) + 1
        return error("E104", "unexpected end of file", A.Span(end_line, end_col, end_line, end_col + 1),
                     f"expected {hint}" if hint else None)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    width = max(len(str(token)), 1)
    span = A.Span(line, column, token.end_line or line, token.end_column or column + width)
    return error("E103", f"unexpected `{token}`" + (f", expected {hint}" if hint else ""), span)


def _expected_text(expected: list[str]) -> str:
    if not expected:
        return ""
    if len(expected) > 6:
        keywords = [e for e in expected if e.startswith("`")]
        others = [e for e in expected if not e.startswith("`")]
        expected = others + keywords[: max(0, 6 - len(others))] + ["..."]
    return " or ".join(expected) if len(expected) <= 2 else ", ".join(expected)
