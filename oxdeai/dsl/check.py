"""Name resolution and type checking: source AST -> diagnostics.

Contract: `check_policy` never raises on any parsed policy; it returns every
error of the file (the caller sorts and caps them) plus warnings. A policy with
no error diagnostics is safe to desugar and evaluate: every reference resolves,
every condition is bool, arithmetic is linear with positive constant divisors,
and every regex is in the dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oxdeai.dsl import ast as A
from oxdeai.dsl.diagnostics import Diagnostic, did_you_mean, error, warning
from oxdeai.dsl.ops import apply_func, arith, compare
from oxdeai.dsl.regex import RegexError, compile_linear
from oxdeai.dsl.types import BOOL, INT, MAX_SAFE_INT, MAX_STRING, OUTCOMES, STR, Base, ConstValue, Ty, type_of_field

RESERVED = {"time", "outcome", "args", "agent", "tool", "true", "false"}
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


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    env: Env
    bounds: dict[str, int]


def check_policy(policy: A.Policy) -> CheckResult:
    checker = _Checker(policy)
    diagnostics = checker.run()
    return CheckResult(diagnostics, checker.env, checker.bounds)


class _Checker:
    def __init__(self, policy: A.Policy) -> None:
        self.policy = policy
        self.env = Env()
        self.diags: list[Diagnostic] = []
        self.reads: set[str] = set()  # state names read by the current expression
        self.bounds: dict[str, int] = {}

    def err(self, code: str, message: str, span: A.Span, help: str | None = None) -> None:
        self.diags.append(error(code, message, span, help))

    # ---- passes -------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        self.collect_declarations()
        for decl in self.policy.decls:
            self.check_decl(decl)
        self.check_effect_conflicts()
        self.check_singletons()
        self.warn_unreachable_tools()
        return self.diags

    def declare_name(self, name: str, span: A.Span, what: str) -> None:
        if name in RESERVED:
            self.err("E212", f"`{name}` is reserved and cannot name {what}", span, "choose another name")
        elif name in self.env.names:
            first = self.env.names[name]
            self.err("E202", f"duplicate name `{name}` (first declared on line {first.line})", span,
                     "rules, limits, states, consts, invariants and assertions share one namespace")
        else:
            self.env.names[name] = span

    def collect_declarations(self) -> None:
        """Pass 1: tools, agent schema, states and limit states, names."""
        agent_seen: A.AgentDecl | None = None
        for decl in self.policy.decls:
            match decl:
                case A.AgentDecl(fields):
                    if agent_seen is not None:
                        self.err("E213", "the agent schema is declared twice", decl.span,
                                 f"merge it with the one on line {agent_seen.span.line}")
                        continue
                    agent_seen = decl
                    self.env.agent = self.check_fields(fields, "agent field")
                case A.ToolDecl(name, params):
                    if name in self.env.tools:
                        self.err("E206", f"tool `{name}` is declared twice", decl.name_span)
                        continue
                    self.env.tools[name] = decl
                    self.check_fields(params, f"parameter of `{name}`")
                case A.StateDecl(name=name):
                    self.declare_name(name, decl.name_span, "a state")
                    self.env.states.setdefault(name, decl)
                case A.LimitDecl(name=name, kind=kind):
                    self.declare_name(name, decl.name_span, "a limit")
                    if name not in self.env.states:
                        self.env.states[name] = A.StateDecl(name, A.IntType(), A.IntLit(0), decl.key, decl.window,
                                                            decl.span, decl.name_span)
                    if kind is A.LimitKind.CONCURRENT:
                        self.env.concurrent.add(name)
                case A.RuleDecl(name=name) | A.InvariantDecl(name=name) | A.AssertDecl(name=name):
                    self.declare_name(name, decl.name_span, "a declaration")
                case A.ConstDecl(name=name):
                    self.declare_name(name, decl.name_span, "a const")

    def check_fields(self, fields: tuple[A.Field, ...], what: str) -> dict[str, A.Field]:
        seen: dict[str, A.Field] = {}
        for f in fields:
            if f.name in seen:
                self.err("E207", f"duplicate {what} `{f.name}`", f.span)
                continue
            seen[f.name] = f
            self.check_type(f.type)
            if f.default is not None:
                self.check_default(f.type, f.default, f.name)
        return seen

    def check_type(self, t: A.Type) -> None:
        if isinstance(t, A.IntType) and t.lo is not None and t.hi is not None and t.lo > t.hi:
            self.err("E313", f"empty range: {t.lo} is greater than {t.hi}", t.span, "write the range as `int[LO..HI]`")
        if isinstance(t, A.EnumType) and len(set(t.values)) != len(t.values):
            self.err("E314", "an enum lists a value twice", t.span)

    def check_default(self, t: A.Type, lit: A.IntLit | A.StrLit | A.BoolLit, name: str) -> None:
        ok = {
            A.IntType: isinstance(lit, A.IntLit), A.BoolType: isinstance(lit, A.BoolLit),
            A.StringType: isinstance(lit, A.StrLit), A.EnumType: isinstance(lit, A.StrLit),
        }[type(t)]
        if ok and isinstance(t, A.IntType) and isinstance(lit, A.IntLit):
            ok = (t.lo is None or lit.value >= t.lo) and (t.hi is None or lit.value <= t.hi)
        if ok and isinstance(t, A.EnumType) and isinstance(lit, A.StrLit):
            ok = lit.value in t.values
        if not ok:
            self.err("E312", f"the default of `{name}` does not fit its type", lit.span)
            return
        # a default stands in for a request value: it must lie in the request domain too
        if isinstance(lit, A.IntLit) and abs(lit.value) > MAX_SAFE_INT:
            self.err("E312", f"the default of `{name}` lies outside the request range ±(2^53 − 1)", lit.span,
                     "requests carry integers within ±9_007_199_254_740_991")
        elif isinstance(lit, A.StrLit) and (len(lit.value) > MAX_STRING
                                            or any(0xD800 <= ord(c) <= 0xDFFF for c in lit.value)):
            self.err("E312", f"the default of `{name}` is not a request string (at most {MAX_STRING} code "
                             f"points, no lone surrogates)", lit.span)

    # ---- declarations --------------------------------------------------------

    def check_decl(self, decl: A.Decl) -> None:
        match decl:
            case A.AgentDecl() | A.ToolDecl():
                pass
            case A.ConstDecl():
                self.check_const(decl)
            case A.StateDecl():
                self.check_state(decl)
            case A.EffectDecl():
                self.check_effect(decl)
            case A.LimitDecl():
                self.check_limit(decl)
            case A.RuleDecl():
                self.check_rule(decl)
            case A.InvariantDecl():
                self.check_invariant(decl)
            case A.AssertDecl():
                self.check_assert(decl)
            case A.CheckDecl(name):
                if name not in A.CHECK_NAMES:
                    hint = did_you_mean(name, A.CHECK_NAMES)
                    self.err("E209", f"unknown check `{name}`" + (f" (did you mean `{hint}`?)" if hint else ""),
                             decl.span, "the checks are " + ", ".join(f"`{c}`" for c in A.CHECK_NAMES))
            case A.NonceDecl(window) | A.IdempotentDecl(window=window):
                if window.seconds <= 0:
                    self.err("E323", "a window must be longer than zero", decl.span)
                agent_id = self.env.agent.get("id")
                if agent_id is None or not isinstance(agent_id.type, (A.StringType, A.EnumType)):
                    self.err("E326", "nonces and idempotency keys are kept per agent: the agent schema needs "
                                     "`id: string`", decl.span,
                             "declare it, e.g. `agent { id: string, ... }`; the host then always says who calls")
                if isinstance(decl, A.IdempotentDecl):
                    self.resolve_patterns(decl.patterns)
            case _:
                raise AssertionError(f"unhandled declaration {decl!r}")

    def check_const(self, decl: A.ConstDecl) -> None:
        scope = Scope(request=False, state=False, what="a const")
        if isinstance(decl.value, A.SetLit):
            ty = self.check_set(decl.value, scope)
        else:
            ty = self.expr(decl.value, scope)
        if ty is None:
            return
        if ty.const is None:
            self.err("E310", f"const `{decl.name}` is not a constant expression", decl.value.span,
                     "a const may use literals and earlier consts only")
            return
        self.env.consts[decl.name] = ty.const
        self.env.const_types[decl.name] = ty

    def check_state(self, decl: A.StateDecl) -> None:
        want = Base.INT if isinstance(decl.type, A.IntType) else Base.BOOL
        got = {A.IntLit: Base.INT, A.BoolLit: Base.BOOL, A.StrLit: Base.STR}[type(decl.init)]
        if want is not got:
            self.err("E318", f"state `{decl.name}` is {want.value} but starts as a {got.value}", decl.init.span)
        self.check_key(decl.key, decl.name)
        if decl.window is not None and decl.window.seconds <= 0:
            self.err("E323", "a window must be longer than zero", decl.span)

    def check_key(self, key: tuple[A.Expr, ...], owner: str) -> None:
        scope = Scope(tools=tuple(self.env.tools.values()), state=False, what=f"the key of `{owner}`")
        for part in key:
            if isinstance(part, A.Arg):
                if not any(part.name in {p.name for p in t.params} for t in self.env.tools.values()):
                    self.err("E203", f"no tool has a parameter `{part.name}`", part.span)
                continue
            ty = self.expr(part, scope)
            if ty is not None and ty.base not in (Base.INT, Base.STR):
                self.err("E317", "a key part must be an int or a string", part.span)

    def key_args_fit(self, state: A.StateDecl, tools: tuple[A.ToolDecl, ...], span: A.Span) -> None:
        """Every `args.P` in a state's key must exist on every tool that reaches it."""
        for part in state.key:
            if isinstance(part, A.Arg):
                for tool in tools:
                    if part.name not in {p.name for p in tool.params}:
                        self.err("E211", f"state `{state.name}` is keyed by `args.{part.name}`, "
                                 f"which tool `{tool.name}` does not have", span)

    def resolve_patterns(self, patterns: tuple[A.Pattern, ...]) -> tuple[tuple[A.ToolDecl, ...], bool]:
        tools: dict[str, A.ToolDecl] = {}
        star = False
        for pattern in patterns:
            star = star or pattern.text == "*"
            matched = [t for name, t in self.env.tools.items() if pattern.matches(name)]
            if not matched:
                hint = did_you_mean(pattern.text, list(self.env.tools))
                self.err("E205", f"pattern `{pattern.text}` matches no declared tool"
                         + (f" (did you mean `{hint}`?)" if hint else ""), pattern.span)
            for t in matched:
                tools.setdefault(t.name, t)
        return tuple(tools.values()), star

    def condition(self, expr: A.Expr | None, scope: Scope) -> None:
        if expr is None:
            return
        ty = self.expr(expr, scope)
        if ty is not None and ty.base is not Base.BOOL:
            self.err("E302", f"a condition must be bool, not {ty}", expr.span,
                     "compare it with something, e.g. `x == \"...\"` or `x > 0`")

    def check_rule(self, decl: A.RuleDecl) -> None:
        tools, star = self.resolve_patterns(decl.patterns)
        self.reads = set()
        self.condition(decl.when, Scope(tools=tools, star=star, what=f"rule `{decl.name}`"))
        self.keyed_reads_fit(tools, decl.span)

    def keyed_reads_fit(self, tools: tuple[A.ToolDecl, ...], span: A.Span) -> None:
        for name in sorted(self.reads):
            self.key_args_fit(self.env.states[name], tools, span)
        self.reads = set()

    def check_effect(self, decl: A.EffectDecl) -> None:
        tools, star = self.resolve_patterns(decl.patterns)
        scope = Scope(tools=tools, star=star, outcome=decl.on_complete, what="an effect")
        self.reads = set()
        self.condition(decl.when, scope)
        for assign in decl.assigns:
            state = self.env.states.get(assign.target)
            if state is None:
                self.unknown_name(assign.target, assign.span, "state", list(self.env.states))
                continue
            if assign.target in self.env.concurrent:
                self.err("E321", f"`{assign.target}` is a `concurrent` limit; only the limit itself writes it",
                         assign.span)
            self.key_args_fit(state, tools, assign.span)
            ty = self.expr(assign.value, scope)
            want = Base.INT if isinstance(state.type, A.IntType) else Base.BOOL
            if assign.op is not A.AssignOp.SET and want is not Base.INT:
                self.err("E321", f"`{assign.op.value}` needs an int state; `{assign.target}` is bool", assign.span,
                         "use `=` to set a bool")
            elif ty is not None and ty.base is not want:
                self.err("E320", f"`{assign.target}` is {want.value} but is given {ty}", assign.value.span)
        self.keyed_reads_fit(tools, decl.span)

    def check_limit(self, decl: A.LimitDecl) -> None:
        tools, star = self.resolve_patterns(decl.patterns)
        scope = Scope(tools=tools, star=star, what=f"limit `{decl.name}`")
        self.check_key(decl.key, decl.name)
        state = self.env.states[decl.name]
        self.key_args_fit(state, tools, decl.span)
        if decl.amount is not None:
            self.reads = set()
            ty = self.expr(decl.amount, scope)
            if ty is not None and ty.base is not Base.INT:
                self.err("E301", f"a `sum` adds ints, not {ty}", decl.amount.span)
            self.keyed_reads_fit(tools, decl.span)
        bound = self.expr(decl.bound, scope)
        self.reads = set()
        if bound is not None:
            if bound.base is not Base.INT:
                self.err("E301", f"a limit bound is an int, not {bound}", decl.bound.span)
            elif bound.const is None:
                self.err("E310", "a limit bound must be a constant", decl.bound.span,
                         "use a literal or a const")
            else:
                assert isinstance(bound.const, int)
                self.bounds[decl.name] = bound.const
        for window in (decl.window, decl.lease):
            if window is not None and window.seconds <= 0:
                self.err("E323", "a window must be longer than zero", decl.span)

    def check_invariant(self, decl: A.InvariantDecl) -> None:
        self.reads = set()
        self.condition(decl.expr, Scope(request=False, what="an invariant"))
        keys = {self.env.states[n].key for n in self.reads}
        if len(keys) > 1:
            self.err("E319", f"invariant `{decl.name}` reads states with different keys", decl.expr.span,
                     "an invariant relates one entry: its states are all unkeyed or share one key")
        self.reads = set()

    def check_assert(self, decl: A.AssertDecl) -> None:
        tools, star = self.resolve_patterns(decl.patterns)
        self.reads = set()
        self.condition(decl.when, Scope(tools=tools, star=star, what=f"assertion `{decl.name}`"))
        self.keyed_reads_fit(tools, decl.span)

    def check_effect_conflicts(self) -> None:
        """Two effects on one state for one tool in the same phase conflict if either is `=`."""
        writes: dict[tuple[str, bool, str], list[tuple[A.AssignOp, A.Span]]] = {}
        for decl in self.policy.decls:
            if isinstance(decl, A.LimitDecl) and decl.name in self.env.states:
                for tool in self.env.tools:
                    if A.matches_any(decl.patterns, tool):
                        writes.setdefault((decl.name, False, tool), []).append((A.AssignOp.ADD, decl.span))
            if not isinstance(decl, A.EffectDecl):
                continue
            for assign in decl.assigns:
                for tool in self.env.tools:
                    if A.matches_any(decl.patterns, tool):
                        writes.setdefault((assign.target, decl.on_complete, tool), []).append((assign.op, assign.span))
        reported: set[A.Span] = set()
        for (state, _phase, tool), ops in writes.items():
            if len(ops) > 1 and any(op is A.AssignOp.SET for op, _ in ops):
                span = ops[-1][1]
                if span not in reported:
                    reported.add(span)
                    self.err("E309", f"conflicting effects on `{state}` for tool `{tool}`: "
                             "an `=` cannot be combined with another write", span,
                             "merge them into one effect, or use `+=` / `-=`")

    def check_singletons(self) -> None:
        seen: dict[type, A.Span] = {}
        for decl in self.policy.decls:
            if isinstance(decl, (A.NonceDecl,)):
                if type(decl) in seen:
                    self.err("E213", "`require nonce` is declared twice", decl.span)
                seen[type(decl)] = decl.span

    def warn_unreachable_tools(self) -> None:
        """W101: a tool no rule names (other than through `*`) is silently always denied."""
        named = {
            tool for decl in self.policy.decls if isinstance(decl, A.RuleDecl)
            for tool in self.env.tools
            if any(p.text != "*" and p.matches(tool) for p in decl.patterns)
        }
        for name, tool in self.env.tools.items():
            if name not in named:
                self.diags.append(warning("W101", f"no rule names tool `{name}`: every call to it is denied by default",
                                          tool.name_span, "add an allow rule, or a deny rule that says why"))

    # ---- expressions ----------------------------------------------------------

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

