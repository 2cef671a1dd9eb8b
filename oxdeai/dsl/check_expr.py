"""Expression typing: one expression and the scope it is read in -> its type.

Contract: `ExprChecker.expr` never raises on a parsed expression; it returns the
expression's type (with its constant value when the checker can fold it) or
None after recording at least one error diagnostic. It records every state name
the expression reads in `reads`, which the declaration passes in `check.py` use
to tell which keyed states a rule or effect reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oxdeai.dsl import ast as A
from oxdeai.dsl.diagnostics import Diagnostic, did_you_mean, error
from oxdeai.dsl.ops import apply_func, arith, compare
from oxdeai.dsl.regex import RegexError
from oxdeai.dsl.regex_linear import compile_linear
from oxdeai.dsl.types import BOOL, INT, OUTCOMES, STR, Base, ConstValue, Ty, type_of_field


@dataclass
class Scope:
    """What an expression may read."""

    tools: tuple[A.ToolDecl, ...] = ()  # the tools whose `args` are in scope
    star: bool = False  # the patterns include `*`
    request: bool = True  # agent, time, tool
    state: bool = True
    outcome: bool = False
    what: str = "a rule"


@dataclass
class Env:
    tools: dict[str, A.ToolDecl] = field(default_factory=dict)
    agent: dict[str, A.Field] = field(default_factory=dict)
    consts: dict[str, ConstValue] = field(default_factory=dict)
    const_types: dict[str, Ty] = field(default_factory=dict)
    states: dict[str, A.StateDecl] = field(default_factory=dict)
    concurrent: set[str] = field(default_factory=set)
    names: dict[str, A.Span] = field(default_factory=dict)



class ExprChecker:
    """Types expressions against the declarations collected in `env`."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.diags: list[Diagnostic] = []
        self.reads: set[str] = set()  # state names read by the current expression

    def err(self, code: str, message: str, span: A.Span, help: str | None = None) -> None:
        self.diags.append(error(code, message, span, help))

    def unknown_name(self, name: str, span: A.Span, what: str, candidates: list[str]) -> None:
        hint = did_you_mean(name, candidates)
        self.err("E201", f"unknown {what} `{name}`" + (f" (did you mean `{hint}`?)" if hint else ""), span)

    def expr(self, e: A.Expr, scope: Scope) -> Ty | None:
        match e:
            case A.IntLit(value):
                return Ty(Base.INT, const=value)
            case A.StrLit(value):
                return Ty(Base.STR, const=value)
            case A.BoolLit(value):
                return Ty(Base.BOOL, const=value)
            case A.SetLit():
                self.err("E316", "a set literal can only follow `in` or define a const", e.span)
                return None
            case A.Name(name):
                return self.expr_name(e, scope)
            case A.Arg(name):
                return self.expr_arg(e, scope)
            case A.AgentField(name):
                if not scope.request:
                    self.err("E308", f"{scope.what} cannot read `agent.{name}`", e.span,
                             "invariants read only state, consts and literals")
                    return None
                f = self.env.agent.get(name)
                if f is None:
                    hint = did_you_mean(name, list(self.env.agent))
                    self.err("E204", f"the agent schema has no field `{name}`"
                             + (f" (did you mean `{hint}`?)" if hint else ""), e.span,
                             None if hint else f"declare it: `agent {{ {name}: string }}`")
                    return None
                return type_of_field(f.type)
            case A.ToolRef():
                if not scope.request:
                    self.err("E308", f"{scope.what} cannot read `tool`", e.span)
                    return None
                return STR
            case A.Dotted(base, name):
                self.err("E201", f"unknown name `{base}.{name}`", e.span,
                         "request fields are `args.NAME` and `agent.NAME`")
                return None
            case A.Neg(operand):
                ty = self.expect(operand, scope, Base.INT, "`-`")
                if ty is None:
                    return None
                return Ty(Base.INT, const=-ty.const if isinstance(ty.const, int) else None)
            case A.Not(operand):
                ty = self.expect(operand, scope, Base.BOOL, "`not`")
                return None if ty is None else Ty(Base.BOOL, const=(not ty.const) if isinstance(ty.const, bool) else None)
            case A.Binary():
                return self.expr_binary(e, scope)
            case A.RangeSet():
                self.err("E316", "a range `LO..HI` can only follow `in`", e.span)
                return None
            case A.In():
                return self.expr_in(e, scope)
            case A.Matches(subject, pattern):
                self.expect(subject, scope, Base.STR, "`matches`")
                try:
                    compile_linear(pattern)  # the dialect, and within what the linear-time matcher builds
                except RegexError as exc:
                    self.err("E306", f"invalid pattern: {exc.message}", e.pattern_span,
                             "the dialect is `. [..] [^..] ( | ) * + ? {m,n} \\d \\w` and `\\` before punctuation")
                return BOOL
            case A.If(cond, then, orelse):
                self.expect(cond, scope, Base.BOOL, "`if`")
                a = self.expr(then, scope)
                b = self.expr(orelse, scope)
                if a is None or b is None:
                    return None
                if a.base is not b.base or a.base is Base.SET:
                    self.err("E301", f"`if` branches differ: {a} and {b}", e.span)
                    return None
                return Ty(a.base)
            case A.Call():
                return self.expr_call(e, scope)
        raise AssertionError(f"unhandled expression {e!r}")

    def expect(self, e: A.Expr, scope: Scope, base: Base, what: str) -> Ty | None:
        ty = self.expr(e, scope)
        if ty is not None and ty.base is not base:
            self.err("E301", f"{what} needs {base.value}, found {ty}", e.span)
            return None
        return ty

    def expr_name(self, e: A.Name, scope: Scope) -> Ty | None:
        name = e.name
        if name == "time":
            if not scope.request:
                self.err("E308", f"{scope.what} cannot read `time`", e.span)
                return None
            return INT
        if name == "outcome":
            if not scope.outcome:
                self.err("E311", "`outcome` can only be read in an `effect on complete`", e.span)
                return None
            return Ty(Base.STR, enum=frozenset(OUTCOMES))
        if name in self.env.const_types:
            return self.env.const_types[name]
        if name in self.env.states:
            if not scope.state:
                self.err("E308", f"{scope.what} cannot read state `{name}`", e.span)
                return None
            self.reads.add(name)
            return INT if isinstance(self.env.states[name].type, A.IntType) else BOOL
        candidates = list(self.env.states) + list(self.env.const_types) + ["time"]
        if name in self.env.names:
            self.err("E201", f"`{name}` is not a value (it names a rule, limit or invariant)", e.span)
        elif name in ("args", "agent"):
            self.err("E201", f"`{name}` needs a field, e.g. `{name}.NAME`", e.span)
        else:
            self.unknown_name(name, e.span, "name", candidates)
        return None

    def expr_arg(self, e: A.Arg, scope: Scope) -> Ty | None:
        if not scope.request:
            self.err("E308", f"{scope.what} cannot read `args.{e.name}`", e.span,
                     "invariants read only state, consts and literals")
            return None
        if scope.star:
            self.err("E210", f"a declaration on `*` cannot read `args.{e.name}`", e.span,
                     "name the tools whose parameter it reads")
            return None
        types: list[Ty] = []
        for tool in scope.tools:
            param = next((p for p in tool.params if p.name == e.name), None)
            if param is None:
                names = [p.name for p in tool.params]
                hint = did_you_mean(e.name, names)
                self.err("E203", f"tool {tool.name} has no parameter `{e.name}`"
                         + (f" (did you mean `{hint}`?)" if hint else ""), e.span)
                return None
            types.append(type_of_field(param.type))
        if not types:
            return None
        if len({t.base for t in types}) > 1:
            self.err("E211", f"`args.{e.name}` has different types across the matched tools", e.span)
            return None
        if all(t.enum is not None for t in types):
            return Ty(Base.STR, enum=frozenset().union(*(t.enum or frozenset() for t in types)))
        return Ty(types[0].base)

    def expr_binary(self, e: A.Binary, scope: Scope) -> Ty | None:
        op = e.op
        if op in A.LOGIC_OPS:
            a = self.expect(e.left, scope, Base.BOOL, f"`{op.value}`")
            b = self.expect(e.right, scope, Base.BOOL, f"`{op.value}`")
            if a is None or b is None:
                return None
            if isinstance(a.const, bool) and isinstance(b.const, bool):
                return Ty(Base.BOOL, const=(a.const and b.const) if op is A.BinOp.AND else (a.const or b.const))
            return BOOL
        if op in A.STRING_OPS:
            self.expect(e.left, scope, Base.STR, f"`{op.value}`")
            self.expect(e.right, scope, Base.STR, f"`{op.value}`")
            return BOOL
        a = self.expr(e.left, scope)
        b = self.expr(e.right, scope)
        if a is None or b is None:
            return None
        if op in A.ARITH_OPS:
            for side, ty in ((e.left, a), (e.right, b)):
                if ty.base is not Base.INT:
                    self.err("E301", f"`{op.value}` needs int, found {ty}", side.span)
                    return None
            return self.arith(e, a, b)
        # comparisons
        if a.base is not b.base or a.base is Base.SET:
            self.err("E301", f"cannot compare {a} with {b}", e.span)
            return None
        if op not in (A.BinOp.EQ, A.BinOp.NE) and a.base is Base.BOOL:
            self.err("E301", f"`{op.value}` orders ints or strings, not bool", e.span)
            return None
        for enum_ty, lit_ty, lit in ((a, b, e.right), (b, a, e.left)):
            if enum_ty.enum is not None and isinstance(lit_ty.const, str) and lit_ty.const not in enum_ty.enum:
                choices = ", ".join(f'"{v}"' for v in sorted(enum_ty.enum))
                self.err("E305", f'"{lit_ty.const}" is not one of {choices}: this comparison is never true'
                         if op is A.BinOp.EQ else f'"{lit_ty.const}" is not one of {choices}', lit.span,
                         f"use one of {choices}")
                return None
        if a.const is not None and b.const is not None:
            return Ty(Base.BOOL, const=compare(op, a.const, b.const))
        return BOOL

    def arith(self, e: A.Binary, a: Ty, b: Ty) -> Ty | None:
        op = e.op
        ca = a.const if isinstance(a.const, int) and not isinstance(a.const, bool) else None
        cb = b.const if isinstance(b.const, int) and not isinstance(b.const, bool) else None
        if op is A.BinOp.MUL and ca is None and cb is None:
            self.err("E303", "`*` needs a constant on one side (arithmetic is linear)", e.span)
            return None
        if op in (A.BinOp.DIV, A.BinOp.MOD) and (cb is None or cb <= 0):
            self.err("E304", f"`{op.value}` needs a positive constant divisor", e.right.span)
            return None
        if ca is not None and cb is not None:
            return Ty(Base.INT, const=arith(op, ca, cb))
        return INT

    def expr_in(self, e: A.In, scope: Scope) -> Ty | None:
        item = self.expr(e.item, scope)
        container = e.container
        if isinstance(container, A.RangeSet):
            lo = self.expr(container.lo, scope)
            hi = self.expr(container.hi, scope)
            for side, ty in ((container.lo, lo), (container.hi, hi)):
                if ty is not None and (ty.base is not Base.INT or ty.const is None):
                    self.err("E310", "range bounds must be constant ints", side.span)
            if item is not None and item.base is not Base.INT:
                self.err("E301", f"a range holds ints, not {item}", e.item.span)
            return BOOL
        if isinstance(container, A.SetLit):
            set_ty = self.check_set(container, scope)
        else:
            set_ty = self.expr(container, scope)
        if set_ty is None or item is None:
            return None
        if set_ty.base is not Base.SET:
            self.err("E316", f"`in` needs a set, a const set or a range, not {set_ty}", container.span)
            return None
        if set_ty.elem is not None and item.base is not set_ty.elem:
            self.err("E301", f"`in` tests a {item} against a set of {set_ty.elem.value}", e.span)
            return None
        return BOOL

    def check_set(self, s: A.SetLit, scope: Scope) -> Ty | None:
        values: list[int | str] = []
        bases: set[Base] = set()
        for item in s.items:
            ty = self.expr(item, Scope(request=False, state=False, what="a set member"))
            if ty is None:
                continue
            if ty.base not in (Base.INT, Base.STR) or ty.const is None or isinstance(ty.const, (bool, frozenset)):
                self.err("E314", "set members are int or string constants", item.span)
                continue
            bases.add(ty.base)
            values.append(ty.const)
        if len(bases) > 1:
            self.err("E314", "a set mixes ints and strings", s.span)
            return None
        elem = bases.pop() if bases else None
        return Ty(Base.SET, elem=elem, const=frozenset(values))  # type: ignore[arg-type]

    def expr_call(self, e: A.Call, scope: Scope) -> Ty | None:
        try:
            func = A.Func(e.func)
        except ValueError:
            hint = did_you_mean(e.func, [f.value for f in A.Func])
            self.err("E208", f"unknown function `{e.func}`" + (f" (did you mean `{hint}`?)" if hint else ""), e.span,
                     "the functions are " + ", ".join(f"`{f.value}`" for f in A.Func))
            return None
        arity = A.FUNC_ARITY[func]
        if len(e.args) != arity:
            self.err("E315", f"`{func.value}` takes {arity} argument{'s' if arity > 1 else ''}, "
                     f"{len(e.args)} given", e.span)
            return None
        want = Base.STR if func is A.Func.LEN else Base.INT
        tys = [self.expect(arg, scope, want, f"`{func.value}`") for arg in e.args]
        if any(t is None for t in tys):
            return None
        consts = [t.const for t in tys if t is not None]
        if all(c is not None for c in consts):
            return Ty(Base.INT, const=apply_func(func, consts))
        return INT

