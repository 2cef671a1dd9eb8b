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

_PRELUDE = "A = ctx.args; G = ctx.agent; T = ctx.time; TOOL = ctx.tool; S = ctx.read_state; O = ctx.outcome"


class _Emitter:
    """Python source for expressions: every case mirrors `eval_expr`.

    Generated code reads `A` (args), `G` (agent), `T` (time), `TOOL`, `S` (state
    reader), `O` (outcome); constants, sets and regexes are bound by name in the
    namespace, never spliced as text (except ints and bools).
    """

    def __init__(self, consts: dict[str, Any]) -> None:
        self.consts = consts
        self.namespace: dict[str, Any] = {"_apply_func": apply_func, "_Func": A.Func}
        self.hoisted: dict[str, str] = {}  # local name -> the expression loading it once per call

    def bind(self, value: Any) -> str:
        name = f"_k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, e: A.Expr) -> str:
        match e:
            case A.IntLit(value):
                return f"({value})"
            case A.BoolLit(value):
                return "True" if value else "False"
            case A.StrLit(value):
                return self.bind(value)
            case A.SetLit(items):
                if all(isinstance(i, (A.IntLit, A.StrLit)) for i in items):
                    return self.bind(frozenset(i.value for i in items))  # type: ignore[union-attr]
                return "frozenset((" + "".join(self.emit(i) + ", " for i in items) + "))"
            case A.Name("time"):
                return "T"
            case A.Name("outcome"):
                return "O"
            case A.Name(name) if name in self.consts:
                return self.bind(self.consts[name])
            case A.Name(name):
                return f"S({name!r})"
            case A.Arg(name):
                self.hoisted[f"a_{name}"] = f"A[{name!r}]"
                return f"a_{name}"
            case A.AgentField(name):
                self.hoisted[f"g_{name}"] = f"G[{name!r}]"
                return f"g_{name}"
            case A.ToolRef():
                return "TOOL"
            case A.Neg(operand):
                return f"(-{self.emit(operand)})"
            case A.Not(operand):
                return f"(not {self.emit(operand)})"
            case A.Binary(op, left, right):
                return self.emit_binary(op, self.emit(left), self.emit(right))
            case A.In(item, A.RangeSet(lo, hi), negated):
                inside = f"({self.emit(lo)} <= {self.emit(item)} <= {self.emit(hi)})"
                return f"(not {inside})" if negated else inside
            case A.In(item, container, negated):
                return f"({self.emit(item)} {'not in' if negated else 'in'} {self.emit(container)})"
            case A.Matches(subject, pattern):
                return f"({self.bind(compile_regex(pattern))}.fullmatch({self.emit(subject)}) is not None)"
            case A.If(cond, then, orelse):
                return f"({self.emit(then)} if {self.emit(cond)} else {self.emit(orelse)})"
            case A.Call(func, args):
                parts = [self.emit(a) for a in args]
                fn = A.Func(func)
                if fn is A.Func.LEN:
                    return f"len({parts[0]})"
                if fn in (A.Func.MIN, A.Func.MAX, A.Func.ABS):
                    return f"{fn.value}({', '.join(parts)})"
                if fn is A.Func.HOUR:  # oxdeai.dsl.ops.hour, inline
                    return f"(({parts[0]} // 3600) % 24)"
                return f"((({parts[0]} // 86400) + 3) % 7)"  # oxdeai.dsl.ops.weekday, inline
        raise AssertionError(f"unhandled expression {e!r}")

    def emit_binary(self, op: A.BinOp, a: str, b: str) -> str:
        match op:
            case A.BinOp.STARTSWITH:
                return f"{a}.startswith({b})"
            case A.BinOp.ENDSWITH:
                return f"{a}.endswith({b})"
            case A.BinOp.CONTAINS:
                return f"({b} in {a})"
            case A.BinOp.DIV:
                return f"({a} // {b})"
        # the remaining operators mean in Python exactly what they mean in the language
        return f"({a} {op.value} {b})"

    def function(self, name: str, body: list[str]) -> Callable[..., Any]:
        loads = "".join(f"    {local} = {load}\n" for local, load in sorted(self.hoisted.items()))
        source = f"def {name}(ctx):\n    {_PRELUDE}\n{loads}" + "".join(f"    {line}\n" for line in body)
        exec(compile(source, f"<oxdeai:{name}>", "exec"), self.namespace)  # noqa: S102 - our own generated code
        return self.namespace[name]  # type: ignore[no-any-return]


def compile_expr(e: A.Expr, consts: dict[str, Any]) -> Compiled:
    """A function computing `eval_expr(e, ctx)`, generated as Python source once."""
    emitter = _Emitter(consts)
    return emitter.function("expr", [f"return {emitter.emit(e)}"])


def compile_rules(denies: list[A.Expr | None], allows: list[A.Expr | None],
                  consts: dict[str, Any]) -> Callable[[Ctx], tuple[list[int], list[int]]]:
    """One function for a tool's rules: (indices of matching denies, of matching allows).
    Allow rules are not evaluated when a deny matches (stage 5 ends the decision)."""
    emitter = _Emitter(consts)
    body = ["d = []"]
    for index, cond in enumerate(denies):
        body.append(f"if {emitter.emit(cond)}: d.append({index})" if cond is not None else f"d.append({index})")
    body += ["if d:", "    return d, []", "a = []"]
    for index, cond in enumerate(allows):
        body.append(f"if {emitter.emit(cond)}: a.append({index})" if cond is not None else f"a.append({index})")
    body.append("return d, a")
    return emitter.function("rules", body)  # type: ignore[return-value]
