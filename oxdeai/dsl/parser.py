"""Source text -> AST, or syntax diagnostics.

Contract: `parse_source` never raises for any input string; it returns either a
`Policy` or at least one error diagnostic. The Lark parser is built once per
process (LALR, strict). Comments are collected with their positions for the
formatter.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import lark
from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from oxdeai.dsl import ast as A
from oxdeai.dsl.diagnostics import Diagnostic, error


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


@functools.cache
def _parser() -> tuple[lark.Lark, dict[str, str]]:
    grammar = resources.files("oxdeai.grammar").joinpath("oxp.lark").read_text(encoding="utf-8")
    parser = lark.Lark(
        grammar,
        parser="lalr",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=True,
    )
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

    def keep_comment(token: Token) -> Token:
        comments.append(Comment(str(token), token.line or 0, token.column or 0))
        return token

    try:
        tree = _parse_with_comments(parser, text, keep_comment)
    except UnexpectedInput as exc:
        return ParseResult(None, (_syntax_diagnostic(exc, text, display),), tuple(comments))
    too_deep = _too_deep(tree)
    if too_deep is not None:
        return ParseResult(None, (too_deep,), tuple(comments))
    builder = _Builder()
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


def _parse_with_comments(parser: lark.Lark, text: str, on_comment: Any) -> lark.Tree:
    # lexer_callbacks are fixed at construction; comments are found by a second
    # cheap scan of the token stream's ignored text instead.
    tree = parser.parse(text)
    for match in _COMMENT.finditer(text):
        if _outside_string(text, match.start()):
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            on_comment(Token("COMMENT", match.group(0), line=line, column=column))
    return tree


_COMMENT = re.compile(r"#[^\n]*")
_STRING = re.compile(r'"([^"\\\n]|\\[^\n])*"')


def _outside_string(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    i = line_start
    while i < pos:
        ch = text[i]
        if ch == "#":
            return False  # an earlier '#' on this line already starts the comment
        if ch == '"':
            m = _STRING.match(text, i)
            if m is None:
                return True
            if m.end() > pos:
                return False
            i = m.end()
            continue
        i += 1
    return True


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


# ---- strings -----------------------------------------------------------------

_UNICODE_ESCAPE = re.compile(r"\\u\{([0-9A-Fa-f]{1,6})\}")


class EscapeError(ValueError):
    pass


def unescape(body: str) -> str:
    """Decode a string literal body: `\\\\`, `\\"`, `\\n`, `\\t`, `\\u{HEX}`; any other
    backslash is kept as it is, so regexes read naturally."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\" or i + 1 >= len(body):
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in '\\"':
            out.append(nxt)
            i += 2
        elif nxt == "n":
            out.append("\n")
            i += 2
        elif nxt == "t":
            out.append("\t")
            i += 2
        elif nxt == "u" and body.startswith("{", i + 2):
            m = _UNICODE_ESCAPE.match(body, i)
            if m is None:
                raise EscapeError("`\\u{...}` needs 1 to 6 hex digits")
            code = int(m.group(1), 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise EscapeError(f"`\\u{{{m.group(1)}}}` is not a Unicode scalar value")
            out.append(chr(code))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(value: str) -> str:
    """The canonical literal for a string value; `unescape(quote(v)[1:-1]) == v`."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            # a lone `\` is kept only where it cannot start an escape
            plain = nxt != "" and nxt not in '\\"ntu' and ord(nxt) >= 0x20 and ord(nxt) != 0x7F
            out.append("\\" if plain else "\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):X}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


# ---- tree -> AST ---------------------------------------------------------------


def _span(meta: Any) -> A.Span:
    if getattr(meta, "empty", True):
        return A.NO_SPAN
    return A.Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tspan(token: Token) -> A.Span:
    return A.Span(token.line or 0, token.column or 0, token.end_line or 0, token.end_column or 0)


_CMP = {op.value: op for op in A.COMPARE_OPS}
_ARITH = {op.value: op for op in A.ARITH_OPS}


def _is_token(x: Any, kind: str | None = None) -> bool:
    return isinstance(x, Token) and (kind is None or x.type == kind)


@v_args(meta=True)
class _Builder(Transformer[Token, A.Policy]):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[Diagnostic] = []

    # -- literals
    def _string(self, token: Token) -> str:
        try:
            return unescape(str(token)[1:-1])
        except EscapeError as exc:
            self.errors.append(error("E105", f"invalid escape: {exc}", _tspan(token),
                                     "write `\\u{1F600}` with 1 to 6 hex digits"))
            return ""

    def int_lit(self, meta: Any, c: list[Any]) -> A.IntLit:
        return A.IntLit(int(str(c[0]).replace("_", "")), _span(meta))

    def str_lit(self, meta: Any, c: list[Any]) -> A.StrLit:
        return A.StrLit(self._string(c[0]), _span(meta))

    def true(self, meta: Any, c: list[Any]) -> A.BoolLit:
        return A.BoolLit(True, _span(meta))

    def false(self, meta: Any, c: list[Any]) -> A.BoolLit:
        return A.BoolLit(False, _span(meta))

    def pos_int(self, meta: Any, c: list[Any]) -> A.IntLit:
        return A.IntLit(int(str(c[0]).replace("_", "")), _span(meta))

    def neg_int(self, meta: Any, c: list[Any]) -> A.IntLit:
        return A.IntLit(-int(str(c[0]).replace("_", "")), _span(meta))

    def literal(self, meta: Any, c: list[Any]) -> A.IntLit | A.StrLit | A.BoolLit:
        item = c[0]
        if _is_token(item, "STRING"):
            return A.StrLit(self._string(item), _span(meta))
        return item  # type: ignore[no-any-return]

    def set_lit(self, meta: Any, c: list[Any]) -> A.SetLit:
        return A.SetLit(tuple(x for x in c if x is not None), _span(meta))

    # -- references
    def name_ref(self, meta: Any, c: list[Any]) -> A.Expr:
        return A.Name(str(c[0]), _span(meta))

    def field_ref(self, meta: Any, c: list[Any]) -> A.Expr:
        base, name = str(c[0]), str(c[1])
        if base == "args":
            return A.Arg(name, _span(meta))
        return A.Dotted(base, name, _span(meta))

    def agent_ref(self, meta: Any, c: list[Any]) -> A.AgentField:
        return A.AgentField(str(c[0]), _span(meta))

    def tool_ref(self, meta: Any, c: list[Any]) -> A.ToolRef:
        return A.ToolRef(_span(meta))

    def key_part(self, meta: Any, c: list[Any]) -> A.Expr:
        return c[0]  # type: ignore[no-any-return]

    def key(self, meta: Any, c: list[Any]) -> tuple[A.Expr, ...]:
        return tuple(c)

    # -- operators
    def neg(self, meta: Any, c: list[Any]) -> A.Expr:
        operand = c[0]
        if isinstance(operand, A.IntLit):
            return A.IntLit(-operand.value, _span(meta))
        return A.Neg(operand, _span(meta))

    def not_(self, meta: Any, c: list[Any]) -> A.Not:
        return A.Not(c[0], _span(meta))

    def and_(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(A.BinOp.AND, c[0], c[1], _span(meta))

    def or_(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(A.BinOp.OR, c[0], c[1], _span(meta))

    def arith(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(_ARITH[str(c[1])], c[0], c[2], _span(meta))

    def compare(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(_CMP[str(c[1])], c[0], c[2], _span(meta))

    def startswith(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(A.BinOp.STARTSWITH, c[0], c[1], _span(meta))

    def endswith(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(A.BinOp.ENDSWITH, c[0], c[1], _span(meta))

    def contains(self, meta: Any, c: list[Any]) -> A.Binary:
        return A.Binary(A.BinOp.CONTAINS, c[0], c[1], _span(meta))

    def matches(self, meta: Any, c: list[Any]) -> A.Matches:
        return A.Matches(c[0], self._string(c[1]), _tspan(c[1]), _span(meta))

    def range_rhs(self, meta: Any, c: list[Any]) -> A.RangeSet:
        return A.RangeSet(c[0], c[1], _span(meta))

    def in_rhs(self, meta: Any, c: list[Any]) -> A.Expr:
        return c[0]  # type: ignore[no-any-return]

    def in_(self, meta: Any, c: list[Any]) -> A.In:
        return A.In(c[0], c[1], False, _span(meta))

    def not_in(self, meta: Any, c: list[Any]) -> A.In:
        return A.In(c[0], c[1], True, _span(meta))

    def if_expr(self, meta: Any, c: list[Any]) -> A.If:
        return A.If(c[0], c[1], c[2], _span(meta))

    def call(self, meta: Any, c: list[Any]) -> A.Call:
        return A.Call(str(c[0]), tuple(x for x in c[1:] if x is not None), _span(meta))

    # -- types
    def type_int(self, meta: Any, c: list[Any]) -> A.IntType:
        return A.IntType(None, None, _span(meta))

    def type_range(self, meta: Any, c: list[Any]) -> A.IntType:
        return A.IntType(c[0].value, c[1].value, _span(meta))

    def type_bool(self, meta: Any, c: list[Any]) -> A.BoolType:
        return A.BoolType(_span(meta))

    def type_string(self, meta: Any, c: list[Any]) -> A.StringType:
        return A.StringType(_span(meta))

    def type_enum(self, meta: Any, c: list[Any]) -> A.EnumType:
        return A.EnumType(tuple(self._string(t) for t in c), _span(meta))

    def state_type(self, meta: Any, c: list[Any]) -> A.Type:
        return c[0]  # type: ignore[no-any-return]

    # -- declarations
    def start(self, meta: Any, c: list[Any]) -> A.Policy:
        return A.Policy(c[0], tuple(c[1:]), _span(meta))

    def header(self, meta: Any, c: list[Any]) -> A.Header:
        version = self._string(c[1]) if len(c) > 1 and c[1] is not None else None
        return A.Header(str(c[0]), version, _span(meta))

    def field(self, meta: Any, c: list[Any]) -> A.Field:
        default = c[3] if len(c) > 3 else None
        return A.Field(str(c[0]), c[1], default, _span(meta))

    def fields(self, meta: Any, c: list[Any]) -> tuple[A.Field, ...]:
        return tuple(x for x in c if x is not None)

    def agent_decl(self, meta: Any, c: list[Any]) -> A.AgentDecl:
        return A.AgentDecl(c[0], _span(meta))

    def tool_name(self, meta: Any, c: list[Any]) -> tuple[str, A.Span]:
        return ".".join(str(t) for t in c), _span(meta)

    def tool_decl(self, meta: Any, c: list[Any]) -> A.ToolDecl:
        name, name_span = c[0]
        return A.ToolDecl(name, c[1], _span(meta), name_span)

    def const_decl(self, meta: Any, c: list[Any]) -> A.ConstDecl:
        return A.ConstDecl(str(c[0]), c[2], _span(meta), _tspan(c[0]))

    def per_clause(self, meta: Any, c: list[Any]) -> tuple[A.Expr, ...]:
        return c[0]  # type: ignore[no-any-return]

    def every_clause(self, meta: Any, c: list[Any]) -> A.Duration:
        return self._duration(c[0])

    def lease_clause(self, meta: Any, c: list[Any]) -> A.Duration:
        return self._duration(c[0])

    def _duration(self, token: Token) -> A.Duration:
        text = str(token)
        return A.Duration(int(text[:-1]), text[-1])

    def state_decl(self, meta: Any, c: list[Any]) -> A.StateDecl:
        name, typ, _eq, init = c[0], c[1], c[2], c[3]
        key: tuple[A.Expr, ...] = ()
        window = None
        for extra in c[4:]:
            if isinstance(extra, tuple):
                key = extra
            elif isinstance(extra, A.Duration):
                window = extra
        return A.StateDecl(str(name), typ, init, key, window, _span(meta), _tspan(name))

    def complete_flag(self, meta: Any, c: list[Any]) -> bool:
        return not getattr(meta, "empty", True)

    def assign(self, meta: Any, c: list[Any]) -> A.Assign:
        op = {"+=": A.AssignOp.ADD, "-=": A.AssignOp.SUB, "=": A.AssignOp.SET}[str(c[1])]
        return A.Assign(str(c[0]), op, c[2], _span(meta))

    def when_clause(self, meta: Any, c: list[Any]) -> tuple[str, A.Expr]:
        return ("when", c[0])

    def because_clause(self, meta: Any, c: list[Any]) -> tuple[str, str]:
        return ("because", self._string(c[0]))

    def effect_decl(self, meta: Any, c: list[Any]) -> A.EffectDecl:
        on_complete, patterns = c[0], c[1]
        when = None
        assigns = []
        for item in c[2:]:
            if isinstance(item, tuple) and item[0] == "when":
                when = item[1]
            elif isinstance(item, A.Assign):
                assigns.append(item)
        return A.EffectDecl(on_complete, patterns, when, tuple(assigns), _span(meta))

    def patterns(self, meta: Any, c: list[Any]) -> tuple[A.Pattern, ...]:
        return tuple(c)

    def pattern_all(self, meta: Any, c: list[Any]) -> A.Pattern:
        return A.Pattern("*", _span(meta))

    def pattern_name(self, meta: Any, c: list[Any]) -> A.Pattern:
        parts = [str(t) for t in c if not _is_token(t, "DOT_STAR")]
        text = ".".join(parts) + (".*" if _is_token(c[-1], "DOT_STAR") else "")
        return A.Pattern(text, _span(meta))

    def _limit_parts(self, c: list[Any]) -> tuple[tuple[A.Expr, ...], A.Duration | None, A.Expr, A.Duration | None]:
        key: tuple[A.Expr, ...] = ()
        window = lease = None
        bound: A.Expr | None = None
        seen_le = False
        for item in c:
            if _is_token(item, "LE"):
                seen_le = True
            elif isinstance(item, tuple):
                key = item
            elif isinstance(item, A.Duration):
                if seen_le:
                    lease = item
                else:
                    window = item
            elif seen_le and item is not None:
                bound = item
        assert bound is not None
        return key, window, bound, lease

    def limit_sum(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        return (A.LimitKind.SUM, c[0], self._limit_parts(c[1:]))

    def limit_count(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        return (A.LimitKind.COUNT, None, self._limit_parts(c))

    def limit_concurrent(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        return (A.LimitKind.CONCURRENT, None, self._limit_parts(c))

    def limit_decl(self, meta: Any, c: list[Any]) -> A.LimitDecl:
        name, patterns, (kind, amount, (key, window, bound, lease)) = c
        return A.LimitDecl(str(name), patterns, kind, amount, key, window, bound, lease,
                           _span(meta), _tspan(name))

    def rule_decl(self, meta: Any, c: list[Any]) -> A.RuleDecl:
        kind = A.RuleKind(str(c[0]))
        name, patterns = c[1], c[2]
        when = because = None
        for item in c[3:]:
            if isinstance(item, tuple) and item[0] == "when":
                when = item[1]
            elif isinstance(item, tuple) and item[0] == "because":
                because = item[1]
        return A.RuleDecl(kind, str(name), patterns, when, because, _span(meta), _tspan(name))

    def invariant_decl(self, meta: Any, c: list[Any]) -> A.InvariantDecl:
        return A.InvariantDecl(str(c[0]), c[1], _span(meta), _tspan(c[0]))

    def assert_never(self, meta: Any, c: list[Any]) -> A.AssertDecl:
        when = c[2][1] if len(c) > 2 and c[2] is not None else None
        return A.AssertDecl(str(c[0]), A.AssertMode.NEVER, c[1], when, _span(meta), _tspan(c[0]))

    def assert_always(self, meta: Any, c: list[Any]) -> A.AssertDecl:
        return A.AssertDecl(str(c[0]), A.AssertMode.ALWAYS, c[1], c[2][1], _span(meta), _tspan(c[0]))

    def check_decl(self, meta: Any, c: list[Any]) -> A.CheckDecl:
        return A.CheckDecl(str(c[0]), _span(meta))

    def nonce_decl(self, meta: Any, c: list[Any]) -> A.NonceDecl:
        return A.NonceDecl(self._duration(c[0]), _span(meta))

    def idempotent_decl(self, meta: Any, c: list[Any]) -> A.IdempotentDecl:
        return A.IdempotentDecl(c[0], self._duration(c[1]), _span(meta))
