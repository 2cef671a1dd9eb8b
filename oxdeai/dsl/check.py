"""Name resolution and type checking: source AST -> diagnostics.

Contract: `check_policy` never raises on any parsed policy; it returns every
error of the file (the caller sorts and caps them) plus warnings. A policy with
no error diagnostics is safe to desugar and evaluate: every reference resolves,
every condition is bool, arithmetic is linear with positive constant divisors,
and every regex is in the dialect.
"""

from __future__ import annotations

from dataclasses import dataclass

from oxdeai.dsl import ast as A
from oxdeai.dsl.check_expr import Env, ExprChecker, Scope
from oxdeai.dsl.diagnostics import Diagnostic, did_you_mean, warning
from oxdeai.dsl.types import MAX_SAFE_INT, MAX_STRING, Base, ConstValue

__all__ = ["CheckResult", "ConstValue", "Env", "check_policy"]

RESERVED = {"time", "outcome", "args", "agent", "tool", "true", "false"}


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]
    env: Env
    bounds: dict[str, int]


def check_policy(policy: A.Policy) -> CheckResult:
    checker = _Checker(policy)
    diagnostics = checker.run()
    return CheckResult(diagnostics, checker.env, checker.bounds)


class _Checker(ExprChecker):
    """The declaration passes; expressions are typed by `ExprChecker`."""

    def __init__(self, policy: A.Policy) -> None:
        super().__init__(Env())
        self.policy = policy
        self.bounds: dict[str, int] = {}

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
        if decl.override and decl.kind is A.RuleKind.ALLOW:
            self.err("E214", f"`override` marks a deny rule meant to win over allow rules; `{decl.name}` is an "
                     "allow rule", decl.span, "remove `override`, or make the rule a deny rule")
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
