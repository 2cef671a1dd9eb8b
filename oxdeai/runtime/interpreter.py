"""Evaluating expressions of the core language.

Contract: `eval_expr` is the reference semantics: one `match` over the AST, every
operator defined in `oxdeai.dsl.ops`. `compile_expr` turns an expression into a
closure computing the same value faster; tests check the two agree on random
expressions. Both assume a checked policy (no type errors at run time: the
language has no evaluation errors, so `and` / `or` may short-circuit).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.ops import apply_func, arith, compare
from oxdeai.dsl.regex import parse_regex, to_python

Value = Any  # int | str | bool | frozenset


@dataclass(slots=True)
class Ctx:
    """What an expression may read: one request, its state, and the consts."""

    args: dict[str, Any]
    agent: dict[str, Any]
    time: int
    tool: str
    read_state: Callable[[str], Any]
    consts: dict[str, Any]
    outcome: str | None = None


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def compile_regex(pattern: str) -> re.Pattern[str]:
    """The dialect pattern as Python `re` (ASCII classes, `.` matches newline)."""
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        compiled = re.compile(to_python(parse_regex(pattern)), re.DOTALL)
        _REGEX_CACHE[pattern] = compiled
    return compiled


def eval_expr(e: A.Expr, ctx: Ctx) -> Value:
    match e:
        case A.IntLit(value) | A.StrLit(value) | A.BoolLit(value):
            return value
        case A.SetLit(items):
            return frozenset(eval_expr(i, ctx) for i in items)
        case A.Name(name):
            return eval_name(name, ctx)
        case A.Arg(name):
            return ctx.args[name]
        case A.AgentField(name):
            return ctx.agent[name]
        case A.ToolRef():
            return ctx.tool
        case A.Neg(operand):
            return -eval_expr(operand, ctx)
        case A.Not(operand):
            return not eval_expr(operand, ctx)
        case A.Binary(A.BinOp.AND, left, right):
            return eval_expr(left, ctx) and eval_expr(right, ctx)
        case A.Binary(A.BinOp.OR, left, right):
            return eval_expr(left, ctx) or eval_expr(right, ctx)
        case A.Binary(op, left, right) if op in A.ARITH_OPS:
            return arith(op, eval_expr(left, ctx), eval_expr(right, ctx))
        case A.Binary(op, left, right):
            return compare(op, eval_expr(left, ctx), eval_expr(right, ctx))
        case A.In(item, A.RangeSet(lo, hi), negated):
            inside = eval_expr(lo, ctx) <= eval_expr(item, ctx) <= eval_expr(hi, ctx)
            return inside != negated
        case A.In(item, container, negated):
            return (eval_expr(item, ctx) in eval_expr(container, ctx)) != negated
        case A.Matches(subject, pattern):
            return compile_regex(pattern).fullmatch(eval_expr(subject, ctx)) is not None
        case A.If(cond, then, orelse):
            return eval_expr(then, ctx) if eval_expr(cond, ctx) else eval_expr(orelse, ctx)
        case A.Call(func, args):
            return apply_func(A.Func(func), [eval_expr(a, ctx) for a in args])
    raise AssertionError(f"unhandled expression {e!r}")


def eval_name(name: str, ctx: Ctx) -> Value:
    if name == "time":
        return ctx.time
    if name == "outcome":
        return ctx.outcome
    if name in ctx.consts:
        return ctx.consts[name]
    return ctx.read_state(name)


Compiled = Callable[[Ctx], Value]


def compile_expr(e: A.Expr, consts: dict[str, Any]) -> Compiled:
    """A closure computing `eval_expr(e, ctx)`; consts are bound at compile time."""
    match e:
        case A.IntLit(value) | A.StrLit(value) | A.BoolLit(value):
            return lambda ctx: value
        case A.SetLit(items):
            if all(isinstance(i, (A.IntLit, A.StrLit)) for i in items):
                frozen = frozenset(i.value for i in items)  # type: ignore[union-attr]
                return lambda ctx: frozen
            parts = [compile_expr(i, consts) for i in items]
            return lambda ctx: frozenset(p(ctx) for p in parts)
        case A.Name(name):
            if name == "time":
                return lambda ctx: ctx.time
            if name == "outcome":
                return lambda ctx: ctx.outcome
            if name in consts:
                const = consts[name]
                return lambda ctx: const
            return lambda ctx: ctx.read_state(name)
        case A.Arg(name):
            return lambda ctx: ctx.args[name]
        case A.AgentField(name):
            return lambda ctx: ctx.agent[name]
        case A.ToolRef():
            return lambda ctx: ctx.tool
        case A.Neg(operand):
            f = compile_expr(operand, consts)
            return lambda ctx: -f(ctx)
        case A.Not(operand):
            f = compile_expr(operand, consts)
            return lambda ctx: not f(ctx)
        case A.Binary(op, left, right):
            return _compile_binary(op, compile_expr(left, consts), compile_expr(right, consts))
        case A.In(item, A.RangeSet(lo, hi), negated):
            fi, flo, fhi = compile_expr(item, consts), compile_expr(lo, consts), compile_expr(hi, consts)
            if negated:
                return lambda ctx: not (flo(ctx) <= fi(ctx) <= fhi(ctx))
            return lambda ctx: flo(ctx) <= fi(ctx) <= fhi(ctx)
        case A.In(item, container, negated):
            fi, fc = compile_expr(item, consts), compile_expr(container, consts)
            if negated:
                return lambda ctx: fi(ctx) not in fc(ctx)
            return lambda ctx: fi(ctx) in fc(ctx)
        case A.Matches(subject, pattern):
            fs, regex = compile_expr(subject, consts), compile_regex(pattern)
            return lambda ctx: regex.fullmatch(fs(ctx)) is not None
        case A.If(cond, then, orelse):
            fc, ft, fe = compile_expr(cond, consts), compile_expr(then, consts), compile_expr(orelse, consts)
            return lambda ctx: ft(ctx) if fc(ctx) else fe(ctx)
        case A.Call(func, args):
            fn = A.Func(func)
            parts = [compile_expr(a, consts) for a in args]
            return lambda ctx: apply_func(fn, [p(ctx) for p in parts])
    raise AssertionError(f"unhandled expression {e!r}")


def _compile_binary(op: A.BinOp, fa: Compiled, fb: Compiled) -> Compiled:
    match op:
        case A.BinOp.AND:
            return lambda ctx: fa(ctx) and fb(ctx)
        case A.BinOp.OR:
            return lambda ctx: fa(ctx) or fb(ctx)
        case A.BinOp.ADD:
            return lambda ctx: fa(ctx) + fb(ctx)
        case A.BinOp.SUB:
            return lambda ctx: fa(ctx) - fb(ctx)
        case A.BinOp.MUL:
            return lambda ctx: fa(ctx) * fb(ctx)
        case A.BinOp.DIV:
            return lambda ctx: fa(ctx) // fb(ctx)
        case A.BinOp.MOD:
            return lambda ctx: fa(ctx) % fb(ctx)
        case A.BinOp.EQ:
            return lambda ctx: fa(ctx) == fb(ctx)
        case A.BinOp.NE:
            return lambda ctx: fa(ctx) != fb(ctx)
        case A.BinOp.LT:
            return lambda ctx: fa(ctx) < fb(ctx)
        case A.BinOp.LE:
            return lambda ctx: fa(ctx) <= fb(ctx)
        case A.BinOp.GT:
            return lambda ctx: fa(ctx) > fb(ctx)
        case A.BinOp.GE:
            return lambda ctx: fa(ctx) >= fb(ctx)
        case A.BinOp.STARTSWITH:
            return lambda ctx: fa(ctx).startswith(fb(ctx))
        case A.BinOp.ENDSWITH:
            return lambda ctx: fa(ctx).endswith(fb(ctx))
        case A.BinOp.CONTAINS:
            return lambda ctx: fb(ctx) in fa(ctx)
    raise AssertionError(op)
