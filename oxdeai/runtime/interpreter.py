"""Evaluating expressions of the core language.

Contract: `eval_expr` is the reference semantics: one `match` over the AST, every
operator defined in `oxdeai.dsl.ops`. `compile_expr` turns an expression into a
closure computing the same value faster; tests check the two agree on random
expressions. Both assume a checked policy (no type errors at run time: the
language has no evaluation errors, so `and` / `or` may short-circuit).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.ops import apply_func, arith, compare, hour, weekday
from oxdeai.dsl.regex_linear import compile_linear

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


def compile_regex(pattern: str) -> Any:
    """The dialect pattern, compiled for linear-time matching (RE2; use `.fullmatch`)."""
    return compile_linear(pattern)


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

_CHAINS = {A.BinOp.AND: frozenset({A.BinOp.AND}), A.BinOp.OR: frozenset({A.BinOp.OR}),
           A.BinOp.ADD: frozenset({A.BinOp.ADD, A.BinOp.SUB}), A.BinOp.SUB: frozenset({A.BinOp.ADD, A.BinOp.SUB})}
_PRELUDE = "A = ctx.args; G = ctx.agent; T = ctx.time; TOOL = ctx.tool; S = ctx.read_state; O = ctx.outcome"


class _Emitter:
    """Python source for expressions: every case mirrors `eval_expr`.

    Generated code reads `A` (args), `G` (agent), `T` (time), `TOOL`, `S` (state
    reader), `O` (outcome); constants, sets and regexes are bound by name in the
    namespace, never spliced as text (except ints and bools).
    """

    def __init__(self, consts: dict[str, Any]) -> None:
        self.consts = consts
        self.namespace: dict[str, Any] = {}
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
            case A.Binary(op, left, right) if op in _CHAINS:
                return self.emit_chain(e)
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
                # hour and weekday: the one definition in oxdeai.dsl.ops, called, not re-spelled
                return f"{self.bind(hour if fn is A.Func.HOUR else weekday)}({parts[0]})"
        raise AssertionError(f"unhandled expression {e!r}")

    def emit_chain(self, e: A.Binary) -> str:
        """`a or b or c` (and `and`, `+`/`-`) as one flat Python expression: a long chain
        nests no parentheses (CPython's parser stops at 200), and means the same, since
        Python's `and`/`or`/`+`/`-` group from the left as the language's do."""
        family = _CHAINS[e.op]
        tail: list[tuple[A.BinOp, A.Expr]] = []
        node: A.Expr = e
        while isinstance(node, A.Binary) and node.op in family:
            tail.append((node.op, node.right))
            node = node.left
        text = self.emit(node)
        for op, right in reversed(tail):
            text += f" {op.value} {self.emit(right)}"
        return f"({text})"

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

    def function(self, name: str, body: list[str]) -> Callable[..., Any] | None:
        """The generated function, or None when CPython cannot compile it (nesting beyond
        its parser's limits): the caller then uses the reference interpreter."""
        loads = "".join(f"    {local} = {load}\n" for local, load in sorted(self.hoisted.items()))
        source = f"def {name}(ctx):\n    {_PRELUDE}\n{loads}" + "".join(f"    {line}\n" for line in body)
        try:
            code = compile(source, f"<oxdeai:{name}>", "exec")
        except (SyntaxError, RecursionError, MemoryError):
            return None
        exec(code, self.namespace)  # noqa: S102 - our own generated code
        return self.namespace[name]  # type: ignore[no-any-return]


def compile_expr(e: A.Expr, consts: dict[str, Any]) -> Compiled:
    """A function computing `eval_expr(e, ctx)`, generated as Python source once."""
    emitter = _Emitter(consts)
    compiled = emitter.function("expr", [f"return {emitter.emit(e)}"])
    return compiled if compiled is not None else functools.partial(_interpret, e)


INDEX_AT = 8  # rules of one shape on one parameter from which they are looked up, not tried one by one


def compile_rules(denies: list[A.Expr | None], allows: list[A.Expr | None],
                  consts: dict[str, Any]) -> Callable[[Ctx], tuple[list[int], list[int]]]:
    """One function for a tool's rules: (indices of matching denies, of matching allows),
    each in rule order. Allow rules are not evaluated when a deny matches (stage 5 ends
    the decision). Where `INDEX_AT` or more rules are each exactly `args.P == C` (or
    `args.P startswith C`) for one parameter P and constants C, they become one lookup
    in a table from C to the rules (one per prefix length), so a thousand rules cost
    what one does; the meaning is the reference's, rule for rule."""
    emitter = _Emitter(consts)
    body = ["d = []", *_matching_lines(emitter, denies, "d"), "if d:", "    return d, []", "a = []",
            *_matching_lines(emitter, allows, "a"), "return d, a"]
    compiled = emitter.function("rules", body)
    return compiled if compiled is not None else functools.partial(_interpret_rules, denies, allows)


def _matching_lines(emitter: _Emitter, conds: list[A.Expr | None], out: str) -> list[str]:
    """Lines appending to `out` the index of every condition that holds, in order."""
    shapes: dict[tuple[str, str], dict[Any, list[int]]] = {}
    for index, cond in enumerate(conds):
        shape = _indexable(cond, emitter.consts)
        if shape is not None:
            shapes.setdefault(shape[:2], {}).setdefault(shape[2], []).append(index)
    tables = {key: table for key, table in shapes.items() if sum(map(len, table.values())) >= INDEX_AT}
    looked_up = {i for table in tables.values() for found in table.values() for i in found}
    lines = []
    for index, cond in enumerate(conds):
        if index in looked_up:
            continue
        lines.append(f"if {emitter.emit(cond)}: {out}.append({index})" if cond is not None else f"{out}.append({index})")
    for (kind, param), table in sorted(tables.items()):
        value = emitter.emit(A.Arg(param))
        found = emitter.bind({c: tuple(found) for c, found in table.items()})
        if kind == "eq":
            lines += [f"m = {found}.get({value})", f"if m: {out}.extend(m)"]
        else:  # prefixes, one lookup per length
            lengths = emitter.bind(tuple(sorted({len(c) for c in table})))
            lines += [f"for n in {lengths}:", f"    if n > len({value}): break",  # else a shorter value repeats
                      f"    m = {found}.get({value}[:n])", f"    if m: {out}.extend(m)"]
    if tables:
        lines.append(f"{out}.sort()")
    return lines


def _indexable(cond: A.Expr | None, consts: dict[str, Any]) -> tuple[str, str, Any] | None:
    """("eq", P, C) for `args.P == C` or `C == args.P`; ("prefix", P, C) for
    `args.P startswith C`; C a literal or a const holding an int or a string."""
    if not isinstance(cond, A.Binary):
        return None

    def constant(e: A.Expr) -> Any:
        if isinstance(e, (A.IntLit, A.StrLit)):
            return e.value
        if isinstance(e, A.Name) and type(consts.get(e.name)) in (int, str):
            return consts[e.name]
        return None

    left, right = cond.left, cond.right
    if cond.op is A.BinOp.EQ:
        if isinstance(right, A.Arg):
            left, right = right, left
        value = constant(right)
        if isinstance(left, A.Arg) and value is not None:
            return "eq", left.name, value
    if cond.op is A.BinOp.STARTSWITH and isinstance(left, A.Arg) and type(constant(right)) is str:
        return "prefix", left.name, constant(right)
    return None


def _interpret(e: A.Expr, ctx: Ctx) -> Value:
    return eval_expr(e, ctx)


def _interpret_rules(denies: list[A.Expr | None], allows: list[A.Expr | None],
                     ctx: Ctx) -> tuple[list[int], list[int]]:
    """compile_rules' meaning, by the reference interpreter (its fallback)."""
    d = [i for i, cond in enumerate(denies) if cond is None or eval_expr(cond, ctx)]
    if d:
        return d, []
    return d, [i for i, cond in enumerate(allows) if cond is None or eval_expr(cond, ctx)]
