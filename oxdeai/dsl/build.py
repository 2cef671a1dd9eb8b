"""Lark parse tree -> frozen AST.

Contract: `TreeBuilder.transform` turns any tree the grammar accepts into an
`A.Policy`, one method per grammar rule, reading its children by position (an
optional clause is a `[..]` slot in the grammar: None when absent); a problem only the builder can see (a bad escape) is recorded in
`errors` rather than raised, so the caller reports every one of them.
"""

from __future__ import annotations

from typing import Any

from lark import Token, Transformer, v_args

from oxdeai.dsl import ast as A
from oxdeai.dsl.diagnostics import Diagnostic, error
from oxdeai.dsl.strings import EscapeError, unescape


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
class TreeBuilder(Transformer[Token, A.Policy]):
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
        name, version = c
        return A.Header(str(name), None if version is None else self._string(version), _span(meta))

    def field(self, meta: Any, c: list[Any]) -> A.Field:
        name, typ, _eq, default = c
        return A.Field(str(name), typ, default, _span(meta))

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
        name, typ, _eq, init, key, window = c
        return A.StateDecl(str(name), typ, init, key or (), window, _span(meta), _tspan(name))

    def complete_flag(self, meta: Any, c: list[Any]) -> bool:
        return not getattr(meta, "empty", True)

    def assign(self, meta: Any, c: list[Any]) -> A.Assign:
        op = {"+=": A.AssignOp.ADD, "-=": A.AssignOp.SUB, "=": A.AssignOp.SET}[str(c[1])]
        return A.Assign(str(c[0]), op, c[2], _span(meta))

    def when_clause(self, meta: Any, c: list[Any]) -> A.Expr:
        return c[0]  # type: ignore[no-any-return]

    def because_clause(self, meta: Any, c: list[Any]) -> str:
        return self._string(c[0])

    def effect_decl(self, meta: Any, c: list[Any]) -> A.EffectDecl:
        on_complete, patterns, when, *assigns = c
        return A.EffectDecl(on_complete, patterns, when, tuple(assigns), _span(meta))

    def patterns(self, meta: Any, c: list[Any]) -> tuple[A.Pattern, ...]:
        return tuple(c)

    def pattern_all(self, meta: Any, c: list[Any]) -> A.Pattern:
        return A.Pattern("*", _span(meta))

    def pattern_name(self, meta: Any, c: list[Any]) -> A.Pattern:
        parts = [str(t) for t in c if not _is_token(t, "DOT_STAR")]
        text = ".".join(parts) + (".*" if _is_token(c[-1], "DOT_STAR") else "")
        return A.Pattern(text, _span(meta))

    def limit_sum(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        amount, key, window, _le, bound = c
        return (A.LimitKind.SUM, amount, (key or (), window, bound, None))

    def limit_count(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        key, window, _le, bound = c
        return (A.LimitKind.COUNT, None, (key or (), window, bound, None))

    def limit_concurrent(self, meta: Any, c: list[Any]) -> tuple[A.LimitKind, A.Expr | None, Any]:
        key, _le, bound, lease = c
        return (A.LimitKind.CONCURRENT, None, (key or (), None, bound, lease))

    def limit_decl(self, meta: Any, c: list[Any]) -> A.LimitDecl:
        name, patterns, (kind, amount, (key, window, bound, lease)) = c
        return A.LimitDecl(str(name), patterns, kind, amount, key, window, bound, lease,
                           _span(meta), _tspan(name))

    def rule_decl(self, meta: Any, c: list[Any]) -> A.RuleDecl:
        override, kind, name, patterns, when, because = c
        return A.RuleDecl(A.RuleKind(str(kind)), str(name), patterns, when, because, _span(meta), _tspan(name),
                          override is not None)

    def invariant_decl(self, meta: Any, c: list[Any]) -> A.InvariantDecl:
        return A.InvariantDecl(str(c[0]), c[1], _span(meta), _tspan(c[0]))

    def assert_never(self, meta: Any, c: list[Any]) -> A.AssertDecl:
        name, patterns, when = c
        return A.AssertDecl(str(name), A.AssertMode.NEVER, patterns, when, _span(meta), _tspan(name))

    def assert_always(self, meta: Any, c: list[Any]) -> A.AssertDecl:
        name, patterns, when = c
        return A.AssertDecl(str(name), A.AssertMode.ALWAYS, patterns, when, _span(meta), _tspan(name))

    def check_decl(self, meta: Any, c: list[Any]) -> A.CheckDecl:
        return A.CheckDecl(str(c[0]), _span(meta))

    def nonce_decl(self, meta: Any, c: list[Any]) -> A.NonceDecl:
        return A.NonceDecl(self._duration(c[0]), _span(meta))

    def idempotent_decl(self, meta: Any, c: list[Any]) -> A.IdempotentDecl:
        return A.IdempotentDecl(c[0], self._duration(c[1]), _span(meta))
