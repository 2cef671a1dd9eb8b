"""The .oxp abstract syntax tree.

Contract: every node is a frozen, slotted dataclass; sequences are tuples; every
node carries a `span` that is excluded from equality and hashing, so two parses
of the same meaning compare equal whatever their layout. No Lark object appears
here: the parser converts everything.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeGuard, Union, get_args


@dataclass(frozen=True, slots=True)
class Span:
    """1-based line/column of the first character and of one past the last."""

    line: int
    column: int
    end_line: int
    end_column: int


NO_SPAN = Span(0, 0, 0, 0)

def _span() -> Span:
    return field(default=NO_SPAN, compare=False, hash=False, repr=False)  # type: ignore[return-value]


# ---- expressions -------------------------------------------------------------


class BinOp(enum.Enum):
    ADD = "+"
    SUB = "-"
    MUL = "*"
    DIV = "/"
    MOD = "%"
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    AND = "and"
    OR = "or"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    CONTAINS = "contains"


ARITH_OPS = frozenset({BinOp.ADD, BinOp.SUB, BinOp.MUL, BinOp.DIV, BinOp.MOD})
COMPARE_OPS = frozenset({BinOp.EQ, BinOp.NE, BinOp.LT, BinOp.LE, BinOp.GT, BinOp.GE})
STRING_OPS = frozenset({BinOp.STARTSWITH, BinOp.ENDSWITH, BinOp.CONTAINS})
LOGIC_OPS = frozenset({BinOp.AND, BinOp.OR})


class Func(enum.Enum):
    LEN = "len"
    MIN = "min"
    MAX = "max"
    ABS = "abs"
    HOUR = "hour"
    WEEKDAY = "weekday"


FUNC_ARITY = {Func.LEN: 1, Func.MIN: 2, Func.MAX: 2, Func.ABS: 1, Func.HOUR: 1, Func.WEEKDAY: 1}


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class StrLit:
    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SetLit:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name: a state, a const, or one of `time` / `outcome`."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Arg:
    """`args.NAME`: a parameter of the called tool."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AgentField:
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ToolRef:
    """`tool`: the called tool's name as a string."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Dotted:
    """`a.b` where `a` is not `args` or `agent`: always an error, kept for messages."""

    base: str
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Binary:
    op: BinOp
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class RangeSet:
    """`LO..HI` on the right of `in`: inclusive."""

    lo: Expr
    hi: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class In:
    item: Expr
    container: Expr  # SetLit, Name of a const set, or RangeSet
    negated: bool
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Matches:
    subject: Expr
    pattern: str
    pattern_span: Span = _span()
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class If:
    cond: Expr
    then: Expr
    orelse: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    func: str  # checked against Func by the checker
    args: tuple[Expr, ...]
    span: Span = _span()


Expr = Union[
    IntLit, StrLit, BoolLit, SetLit, Name, Arg, AgentField, ToolRef, Dotted,
    Neg, Not, Binary, RangeSet, In, Matches, If, Call,
]
_EXPR_TYPES: tuple[type, ...] = get_args(Expr)


def is_expr(value: object) -> TypeGuard[Expr]:
    return isinstance(value, _EXPR_TYPES)


# ---- types, durations, patterns ------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntType:
    lo: int | None = None
    hi: int | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class BoolType:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class StringType:
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EnumType:
    values: tuple[str, ...]
    span: Span = _span()


Type = Union[IntType, BoolType, StringType, EnumType]

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: str  # one of s m h d

    @property
    def seconds(self) -> int:
        return self.amount * DURATION_UNITS[self.unit]

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True, slots=True)
class Pattern:
    """`a.b` (one tool), `a.*` (every tool under `a.`), `*` (every tool)."""

    text: str
    span: Span = _span()

    def matches(self, tool: str) -> bool:
        if self.text == "*":
            return True
        if self.text.endswith(".*"):
            return tool.startswith(self.text[:-1])
        return tool == self.text


def matches_any(patterns: tuple[Pattern, ...], tool: str) -> bool:
    return any(p.matches(tool) for p in patterns)


# ---- declarations ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: Type
    default: IntLit | StrLit | BoolLit | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Header:
    name: str
    version: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class AgentDecl:
    fields: tuple[Field, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class ToolDecl:
    name: str
    params: tuple[Field, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class ConstDecl:
    name: str
    value: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class StateDecl:
    name: str
    type: IntType | BoolType
    init: IntLit | BoolLit | StrLit
    key: tuple[Expr, ...] = ()
    window: Duration | None = None
    span: Span = _span()
    name_span: Span = _span()


class AssignOp(enum.Enum):
    ADD = "+="
    SUB = "-="
    SET = "="


@dataclass(frozen=True, slots=True)
class Assign:
    target: str
    op: AssignOp
    value: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class EffectDecl:
    on_complete: bool
    patterns: tuple[Pattern, ...]
    when: Expr | None
    assigns: tuple[Assign, ...]
    span: Span = _span()
    # set by desugaring: the limit this effect implements, if any
    limit: str | None = None


class LimitKind(enum.Enum):
    SUM = "sum"
    COUNT = "count"
    CONCURRENT = "concurrent"


@dataclass(frozen=True, slots=True)
class LimitDecl:
    name: str
    patterns: tuple[Pattern, ...]
    kind: LimitKind
    amount: Expr | None  # the `sum` expression; None for count / concurrent
    key: tuple[Expr, ...]
    window: Duration | None
    bound: Expr
    lease: Duration | None = None
    span: Span = _span()
    name_span: Span = _span()


class RuleKind(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class RuleDecl:
    kind: RuleKind
    name: str
    patterns: tuple[Pattern, ...]
    when: Expr | None = None
    because: str | None = None
    span: Span = _span()
    name_span: Span = _span()
    override: bool = False  # `override deny`: meant to win over the allow rules it overlaps (no_conflicts skips it)


@dataclass(frozen=True, slots=True)
class InvariantDecl:
    name: str
    expr: Expr
    span: Span = _span()
    name_span: Span = _span()
    # set by desugaring: the limit that generated this invariant
    limit: str | None = None


class AssertMode(enum.Enum):
    NEVER = "never"
    ALWAYS = "always"


@dataclass(frozen=True, slots=True)
class AssertDecl:
    name: str
    mode: AssertMode
    patterns: tuple[Pattern, ...]
    when: Expr | None
    span: Span = _span()
    name_span: Span = _span()


CHECK_NAMES = ("no_conflicts", "coverage", "no_dead_rules")


@dataclass(frozen=True, slots=True)
class CheckDecl:
    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class NonceDecl:
    window: Duration
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class IdempotentDecl:
    patterns: tuple[Pattern, ...]
    window: Duration
    span: Span = _span()


Decl = Union[
    AgentDecl, ToolDecl, ConstDecl, StateDecl, EffectDecl, LimitDecl, RuleDecl,
    InvariantDecl, AssertDecl, CheckDecl, NonceDecl, IdempotentDecl,
]


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed .oxp file, declarations in source order."""

    header: Header
    decls: tuple[Decl, ...]
    span: Span = _span()


def effect_names(effect: EffectDecl) -> set[str]:
    """Every name an effect declaration reads or writes: its targets and the bare names of
    its `when` and right-hand sides. The engine (which effects a late completion drops)
    and the encoder (which it models as applied) both filter these by windowed state."""
    names = {a.target for a in effect.assigns} | bare_names(effect.when)
    for a in effect.assigns:
        names |= bare_names(a.value)
    return names


def subexpressions(expr: Expr | None) -> Iterator[Expr]:
    """The expression and every expression inside it, at any depth (iteratively)."""
    stack: list[Expr] = [] if expr is None else [expr]
    while stack:
        node = stack.pop()
        yield node
        for slot in node.__slots__:
            child = getattr(node, slot)
            for item in child if isinstance(child, tuple) else (child,):
                if is_expr(item):
                    stack.append(item)


def bare_names(expr: Expr | None) -> set[str]:
    """Every bare `Name` an expression mentions (states, consts, `time`, `outcome`)."""
    return {e.name for e in subexpressions(expr) if isinstance(e, Name)}
