"""The core language in Z3: a mirror of `oxdeai.runtime.interpreter.eval_expr`.

Contract (exact encoding): for every expression and every concrete environment,
the Z3 term evaluated under that environment equals the interpreter's value.
Ints are Z3 `Int` (unbounded); `/` and `%` with a positive divisor are Z3's `div`
and `mod`, which agree with Python's `//` and `%` there; strings are Z3 strings of
code points; `matches` is membership in the translated regex. Anything that cannot
be encoded exactly raises `Unsupported(span, why)`, which the caller reports as
`unknown`: never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.dsl.regex import RAlt, RAny, RChar, RClass, RConcat, Regex, RRepeat, parse_regex

# Z3's characters stop at U+2FFFF; below U+1FFFF every character a policy never names
# is interchangeable with one Z3 has, so proofs hold for all of Unicode.
MAX_CODE = 0x1FFFF
SURROGATES = (0xD800, 0xDFFF)


class Unsupported(Exception):
    def __init__(self, span: A.Span, why: str) -> None:
        super().__init__(why)
        self.span = span
        self.why = why


def z3_char(code: int, span: A.Span = A.NO_SPAN) -> z3.ReRef:
    if code > MAX_CODE:
        raise Unsupported(span, f"character U+{code:X} lies above U+1FFFF, beyond the solver's alphabet")
    return z3.Range(chr(code), chr(code))


def z3_str(value: str, span: A.Span = A.NO_SPAN) -> z3.SeqRef:
    """A Z3 string literal with exactly these code points (Z3 would read `\\u{..}` as an escape)."""
    for ch in value:
        if ord(ch) > MAX_CODE:
            raise Unsupported(span, f"the string literal holds U+{ord(ch):X}, above U+1FFFF")
    return z3.StringVal(value.replace("\\", "\\u{5c}"))


def scalar_alphabet() -> z3.ReRef:
    """Strings of Unicode scalar values: every code point but the surrogates."""
    low = z3.Range(chr(0), chr(SURROGATES[0] - 1))
    high = z3.Range(chr(SURROGATES[1] + 1), chr(0x2FFFF))
    return z3.Star(z3.Union(low, high))


def encode_regex(node: Regex, span: A.Span = A.NO_SPAN) -> z3.ReRef:
    match node:
        case RChar(code):
            return z3_char(code, span)
        case RAny():
            return z3.AllChar(z3.ReSort(z3.StringSort()))
        case RClass(negated, ranges):
            parts = []
            for lo, hi in ranges:
                if hi > MAX_CODE:
                    raise Unsupported(span, f"a class bound U+{hi:X} lies above U+1FFFF")
                parts.append(z3.Range(chr(lo), chr(hi)))
            union = parts[0] if len(parts) == 1 else z3.Union(*parts)
            if negated:
                return z3.Intersect(z3.AllChar(z3.ReSort(z3.StringSort())), z3.Complement(union))
            return union
        case RConcat(parts):
            if not parts:
                return z3.Re(z3.StringVal(""))
            encoded = [encode_regex(p, span) for p in parts]
            return encoded[0] if len(encoded) == 1 else z3.Concat(*encoded)
        case RAlt(branches):
            return z3.Union(*[encode_regex(b, span) for b in branches])
        case RRepeat(inner, lo, hi):
            base = encode_regex(inner, span)
            if hi == 0:  # exactly zero repetitions; z3.Loop(r, lo, 0) would mean "at least lo"
                return z3.Re(z3.StringVal(""))
            if hi is None:
                star = z3.Star(base)
                return star if lo == 0 else z3.Concat(z3.Loop(base, lo, lo), star)
            return z3.Loop(base, lo, hi)
    raise AssertionError(f"unhandled regex node {node!r}")


@dataclass
class Env:
    """The symbolic world an expression reads."""

    args: dict[str, z3.ExprRef]
    agent: dict[str, z3.ExprRef]
    time: z3.ArithRef
    tool: str
    read_state: Callable[[str], z3.ExprRef]
    consts: dict[str, Any]
    outcome: z3.SeqRef | None = None


def encode_value(value: Any, span: A.Span = A.NO_SPAN) -> z3.ExprRef:
    if isinstance(value, bool):
        return z3.BoolVal(value)
    if isinstance(value, int):
        return z3.IntVal(value)
    if isinstance(value, str):
        return z3_str(value, span)
    raise Unsupported(span, f"cannot encode the value {value!r}")


def encode_expr(e: A.Expr, env: Env) -> Any:
    """Same case order as `eval_expr`."""
    match e:
        case A.IntLit(value) | A.StrLit(value) | A.BoolLit(value):
            return encode_value(value, e.span)
        case A.SetLit(items):
            return [encode_expr(i, env) for i in items]
        case A.Name(name):
            return encode_name(name, env, e.span)
        case A.Arg(name):
            return env.args[name]
        case A.AgentField(name):
            return env.agent[name]
        case A.ToolRef():
            return z3_str(env.tool)
        case A.Neg(operand):
            return -encode_expr(operand, env)
        case A.Not(operand):
            return z3.Not(encode_expr(operand, env))
        case A.Binary(A.BinOp.AND, left, right):
            return z3.And(encode_expr(left, env), encode_expr(right, env))
        case A.Binary(A.BinOp.OR, left, right):
            return z3.Or(encode_expr(left, env), encode_expr(right, env))
        case A.Binary(op, left, right) if op in A.ARITH_OPS:
            return encode_arith(op, encode_expr(left, env), encode_expr(right, env))
        case A.Binary(op, left, right):
            return encode_compare(op, encode_expr(left, env), encode_expr(right, env))
        case A.In(item, A.RangeSet(lo, hi), negated):
            x = encode_expr(item, env)
            inside = z3.And(encode_expr(lo, env) <= x, x <= encode_expr(hi, env))
            return z3.Not(inside) if negated else inside
        case A.In(item, container, negated):
            x = encode_expr(item, env)
            members = encode_expr(container, env)
            inside = z3.Or(*[x == m for m in members]) if members else z3.BoolVal(False)
            return z3.Not(inside) if negated else inside
        case A.Matches(subject, pattern):
            return z3.InRe(encode_expr(subject, env), encode_regex(parse_regex(pattern), e.pattern_span))
        case A.If(cond, then, orelse):
            return z3.If(encode_expr(cond, env), encode_expr(then, env), encode_expr(orelse, env))
        case A.Call(func, args):
            return encode_call(A.Func(func), [encode_expr(a, env) for a in args])
    raise AssertionError(f"unhandled expression {e!r}")


def encode_name(name: str, env: Env, span: A.Span) -> Any:
    if name == "time":
        return env.time
    if name == "outcome":
        if env.outcome is None:
            raise Unsupported(span, "`outcome` outside a completion")
        return env.outcome
    if name in env.consts:
        value = env.consts[name]
        if isinstance(value, frozenset):
            return [encode_value(v, span) for v in sorted(value, key=repr)]
        return encode_value(value, span)
    return env.read_state(name)


def encode_arith(op: A.BinOp, a: Any, b: Any) -> Any:
    match op:
        case A.BinOp.ADD:
            return a + b
        case A.BinOp.SUB:
            return a - b
        case A.BinOp.MUL:
            return a * b
        case A.BinOp.DIV:
            return a / b  # Z3 div: floor division for the positive constant divisors the checker allows
        case A.BinOp.MOD:
            return a % b  # Z3 mod: in [0, d) for d > 0
    raise AssertionError(op)


def encode_compare(op: A.BinOp, a: Any, b: Any) -> Any:
    """`oxdeai.dsl.ops.compare`, case for case. A string operator with a constant needle
    is written as regex membership, which keeps Z3 steady; the meaning is the same."""
    match op:
        case A.BinOp.EQ:
            return a == b
        case A.BinOp.NE:
            return a != b
        case A.BinOp.LT:
            return a < b
        case A.BinOp.LE:
            return a <= b
        case A.BinOp.GT:
            return a > b
        case A.BinOp.GE:
            return a >= b
        case A.BinOp.STARTSWITH:
            if z3.is_string_value(b):
                return z3.InRe(a, z3.Concat(z3.Re(b), _ANY_STRING))
            return z3.PrefixOf(b, a)
        case A.BinOp.ENDSWITH:
            if z3.is_string_value(b):
                return z3.InRe(a, z3.Concat(_ANY_STRING, z3.Re(b)))
            return z3.SuffixOf(b, a)
        case A.BinOp.CONTAINS:
            if z3.is_string_value(b):
                return z3.InRe(a, z3.Concat(_ANY_STRING, z3.Re(b), _ANY_STRING))
            return z3.Contains(a, b)
    raise AssertionError(op)


_ANY_STRING = z3.Full(z3.ReSort(z3.StringSort()))


def encode_call(func: A.Func, args: list[Any]) -> Any:
    match func:
        case A.Func.LEN:
            return z3.Length(args[0])
        case A.Func.MIN:
            return z3.If(args[0] <= args[1], args[0], args[1])
        case A.Func.MAX:
            return z3.If(args[0] >= args[1], args[0], args[1])
        case A.Func.ABS:
            return z3.If(args[0] < 0, -args[0], args[0])
        case A.Func.HOUR:
            return (args[0] / 3600) % 24
        case A.Func.WEEKDAY:
            return ((args[0] / 86400) + 3) % 7
    raise AssertionError(func)
