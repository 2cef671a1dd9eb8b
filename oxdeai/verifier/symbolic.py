"""Symbolic requests, states and the decision rule, for one tool of one policy.

Contract: `World(policy, tool)` holds Z3 variables for one schema-valid request to
`tool` (`schema` constrains them exactly as the engine's validation does) and for
the pre-state entries that request's keys select (after window roll-over). Its
`rules`, `decide`, `post` and `guard` are the engine's stages 5-7, 5-8, the effects
and stage 8, written once, in the same words as the engine.
"""

from __future__ import annotations

from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import MAX_SAFE_INT, MAX_STRING, int_bounds
from oxdeai.verifier.encode import Env, encode_expr, encode_value, scalar_alphabet, z3_str

PREFERRED_TIME = 1_764_000_000  # the time a counterexample shows, when the query allows it


def sort_of(t: A.Type | A.IntType | A.BoolType) -> z3.SortRef:
    match t:
        case A.IntType():
            return z3.IntSort()
        case A.BoolType():
            return z3.BoolSort()
        case A.StringType() | A.EnumType():
            return z3.StringSort()
    raise AssertionError(t)


def type_constraint(var: Any, t: A.Type) -> Any:
    """What the engine's schema validation accepts for a value of type `t`."""
    match t:
        case A.IntType(lo, hi):
            low, high = int_bounds(lo, hi)
            return z3.And(low <= var, var <= high)
        case A.BoolType():
            return z3.BoolVal(True)
        case A.StringType():
            return z3.And(z3.InRe(var, scalar_alphabet()), z3.Length(var) <= MAX_STRING)
        case A.EnumType(values):
            return z3.Or(*[var == z3_str(v) for v in values])
    raise AssertionError(t)


def key_fits(state: A.StateDecl, tool: A.ToolDecl) -> bool:
    """Can a request to `tool` compute this state's key?"""
    params = {p.name for p in tool.params}
    return all(not isinstance(k, A.Arg) or k.name in params for k in state.key)


class Vars:
    """Named Z3 variables, shared by every world built over it (so two worlds can
    talk about one request and one state, as `diff` needs)."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.table: dict[tuple[str, str], Any] = {}

    def get(self, name: str, sort: z3.SortRef) -> Any:
        key = (name, str(sort))
        if key not in self.table:
            self.table[key] = z3.Const(f"{self.tag}{name}", sort)
        return self.table[key]


class World:
    def __init__(self, policy: CheckedPolicy, tool: str, variables: Vars | None = None,
                 outcome: str | None = None, presence: bool = False) -> None:
        """`presence=True` models a request that may omit a defaulted parameter (`diff`
        needs it: two versions may declare different parameters): `present.P` says
        whether the request carries P, `provided.P` is what it carries, and `args.P` is
        the value the engine decides with (the default when omitted)."""
        self.policy = policy
        self.part = policy.for_tool(tool)  # the declarations that apply, as the engine's plan has them
        self.tool = self.part.tool
        self.vars = variables or Vars()
        self.presence = presence
        self.present: dict[str, Any] = {}
        self.provided: dict[str, Any] = {}
        if presence:
            for p in self.tool.params:
                self.present[p.name] = self.vars.get(f"present.{p.name}", z3.BoolSort())
                self.provided[p.name] = self.vars.get(f"args.{p.name}", sort_of(p.type))
            self.args = {p.name: self.provided[p.name] if p.default is None else
                         z3.If(self.present[p.name], self.provided[p.name], encode_value(p.default.value))
                         for p in self.tool.params}
        else:
            self.args = {p.name: self.vars.get(f"args.{p.name}", sort_of(p.type)) for p in self.tool.params}
        self.agent = {f.name: self.vars.get(f"agent.{f.name}", sort_of(f.type)) for f in policy.agent}
        self.time = self.vars.get("time", z3.IntSort())
        self.pre: dict[str, Any] = {}  # state name -> its entry under this request's key
        self.outcome = z3_str(outcome) if outcome is not None else None
        self._post: dict[str, Any] | None = None

    # ---- the request ------------------------------------------------------------

    def schema(self) -> Any:
        if self.presence:  # a required parameter is carried; a carried one fits its type
            parts = [z3.Implies(self.present[p.name], type_constraint(self.provided[p.name], p.type))
                     if p.default is not None else z3.And(self.present[p.name],
                                                          type_constraint(self.provided[p.name], p.type))
                     for p in self.tool.params]
        else:
            parts = [type_constraint(self.args[p.name], p.type) for p in self.tool.params]
        parts += [type_constraint(self.agent[f.name], f.type) for f in self.policy.agent]
        parts += [self.time >= 0, self.time <= MAX_SAFE_INT]
        if self.outcome is not None:  # a completion: `time` is the call's, `completed_at` the step's
            parts += [self.completed_at >= self.time, self.completed_at <= MAX_SAFE_INT]
        return z3.And(*parts)

    @property
    def completed_at(self) -> Any:
        return self.vars.get("completed_at", z3.IntSort())

    def live(self, effect: A.EffectDecl) -> Any:
        """The engine applies an `on complete` effect whole, and only while the window of
        every windowed state it reads or writes is the call's (Engine._complete_one)."""
        names = A.effect_names(effect) & self.policy.states.keys()
        windows = sorted({w.seconds for n in names if (w := self.policy.states[n].window) is not None})
        return z3.And(*[self.completed_at / w == self.time / w for w in windows]) if windows else z3.BoolVal(True)

    def read(self, name: str) -> Any:
        if name not in self.pre:
            state = self.policy.states[name]
            self.pre[name] = self.vars.get(f"state.{name}", sort_of(state.type))
        return self.pre[name]

    def env(self, read: Any = None) -> Env:
        return Env(self.args, self.agent, self.time, self.tool.name, read or self.read, self.policy.consts,
                   self.outcome)

    def holds(self, expr: A.Expr | None, read: Any = None) -> Any:
        return z3.BoolVal(True) if expr is None else encode_expr(expr, self.env(read))

    # ---- the decision, written once ------------------------------------------------

    def rules_for(self, kind: A.RuleKind) -> list[A.RuleDecl]:
        return list(self.part.allows if kind is A.RuleKind.ALLOW else self.part.denies)

    def matches(self, rule: A.RuleDecl) -> Any:
        return self.holds(rule.when)

    def gates(self) -> Any:
        parts = []
        for gate in self.part.gates:
            amount = encode_expr(gate.amount, self.env())
            parts.append(z3.And(amount >= 0, self.read(gate.name) + amount <= gate.bound))
        return z3.And(*parts) if parts else z3.BoolVal(True)

    def rules(self) -> Any:
        """Stages 5-7: no deny matches, some allow matches, every gate passes."""
        denies = [self.matches(r) for r in self.rules_for(A.RuleKind.DENY)]
        allows = [self.matches(r) for r in self.rules_for(A.RuleKind.ALLOW)]
        return z3.And(z3.Not(z3.Or(*denies)) if denies else z3.BoolVal(True),
                      z3.Or(*allows) if allows else z3.BoolVal(False),
                      self.gates())

    def decide(self) -> Any:
        """Stages 5-8: what a fresh, valid call gets (the guard includes the value domain:
        no write may leave ±(2^53 − 1))."""
        return z3.And(self.rules(), self.guard(), self.in_range(self.post()))

    def in_range(self, values: dict[str, Any]) -> Any:
        parts = [z3.And(-MAX_SAFE_INT <= v, v <= MAX_SAFE_INT) for v in values.values() if z3.is_int(v)]
        return z3.And(*parts) if parts else z3.BoolVal(True)

    def effects(self, on_complete: bool) -> list[A.EffectDecl]:
        return list(self.part.on_complete if on_complete else self.part.effects)

    def post(self, on_complete: bool = False) -> dict[str, Any]:
        """The state after the effects: every right-hand side reads the state before."""
        deltas: dict[str, list[tuple[A.AssignOp, Any, Any]]] = {}
        for effect in self.effects(on_complete):
            cond = self.holds(effect.when)
            if on_complete:
                cond = z3.And(self.live(effect), cond)
            for assign in effect.assigns:
                deltas.setdefault(assign.target, []).append((assign.op, cond, encode_expr(assign.value, self.env())))
        post: dict[str, Any] = {}
        for name, ops in deltas.items():
            value = self.read(name)
            for op, cond, rhs in ops:
                if op is A.AssignOp.SET:
                    value = z3.If(cond, rhs, value)
                elif op is A.AssignOp.ADD:
                    value = value + z3.If(cond, rhs, 0)
                else:
                    value = value - z3.If(cond, rhs, 0)
            post[name] = value
        return post

    def written(self) -> frozenset[str]:
        return self.part.writes

    def invariant(self, inv: A.InvariantDecl, values: dict[str, Any] | None = None) -> Any:
        """The invariant on this request's entries: `values` overrides the pre-state."""
        override = values or {}
        return self.holds(inv.expr, lambda n: override[n] if n in override else self.read(n))

    def guard(self) -> Any:
        """Stage 8: no invariant over a written entry turns from true to false."""
        written = self.written()
        if not written:
            return z3.BoolVal(True)
        post = self.post()
        parts = []
        for inv in self.policy.invariants:
            if state_reads(inv.expr, self.policy) & written:
                parts.append(z3.Implies(self.invariant(inv), self.invariant(inv, post)))
        return z3.And(*parts) if parts else z3.BoolVal(True)

    def fits(self, inv: A.InvariantDecl) -> bool:
        return invariant_fits(self.policy, inv, self.tool.name)

    def wishes(self) -> list[list[Any]]:
        """Tiers of soft wishes for readable counterexamples: a fixed time, short printable
        strings (agent fields non-empty, as they key state), small numbers."""
        inputs = list(self.args.values()) + list(self.agent.values())
        strings = [v for v in inputs if v.sort() == z3.StringSort()]
        ints = [v for v in inputs if v.sort() == z3.IntSort()]
        agent_strings = [v for v in self.agent.values() if v.sort() == z3.StringSort()]
        word = z3.Star(z3.Union(z3.Range("a", "z"), z3.Range("0", "9"), z3.Re("_"), z3.Re("-")))
        printable = z3.Star(z3.Range(" ", "~"))
        basic = [self.time == PREFERRED_TIME, *[z3.Length(v) <= 12 for v in strings],
                 *[z3.And(v >= -1000, v <= 100_000) for v in ints]]
        named = [z3.Length(v) >= 1 for v in agent_strings]
        return [basic + named + [z3.InRe(v, word) for v in strings],
                basic + named + [z3.InRe(v, printable) for v in strings],
                basic, [self.time == PREFERRED_TIME]]

    def assume(self, invariants: list[A.InvariantDecl], also: set[str] | None = None) -> Any:
        """I(S) on this request's entries, plus what the language guarantees (a `concurrent`
        limit's count is never negative). Build it last: only invariants connected to the
        states the query reads are added. Leaving one out can only make a query easier to
        satisfy, never turn a counterexample into a proof; and since I holds on the initial
        values, an unconnected invariant (constraining only its own variables) changes nothing."""
        relevant = set(self.pre) | (also or set())
        chosen: list[A.InvariantDecl] = []
        candidates = [i for i in invariants if self.fits(i)]
        changed = True
        while changed:
            changed = False
            for inv in candidates:
                reads = state_reads(inv.expr, self.policy)
                if inv not in chosen and reads & relevant:
                    chosen.append(inv)
                    relevant |= reads
                    changed = True
        parts = [self.invariant(i) for i in chosen]
        parts.append(self.in_range(self.pre))  # no step ever stores an int outside ±(2^53 − 1)
        for gate in self.policy.gates:
            if gate.concurrent and gate.name in relevant and key_fits(self.policy.states[gate.name], self.tool):
                parts.append(self.read(gate.name) >= 0)
        return z3.And(*parts) if parts else z3.BoolVal(True)


def tool_writes(policy: CheckedPolicy, tool: str, on_complete: bool) -> frozenset[str]:
    """The states a call to `tool` writes when decided (or when completed)."""
    part = policy.for_tool(tool)
    return part.completion_writes if on_complete else part.writes


def invariant_fits(policy: CheckedPolicy, inv: A.InvariantDecl, tool: str) -> bool:
    """Does a request to `tool` select entries of the invariant's states?"""
    decl = policy.tools[tool]
    return all(key_fits(policy.states[n], decl) for n in state_reads(inv.expr, policy))


def state_reads(expr: A.Expr | None, policy: CheckedPolicy) -> frozenset[str]:
    """The states `expr` reads. Memoized by identity; the entry keeps `expr` alive, so an
    id is never reused for another expression while the table holds it."""
    if expr is None:
        return frozenset()
    cache: dict[int, tuple[A.Expr, frozenset[str]]] = policy.memo("state_reads", dict)
    hit = cache.get(id(expr))
    if hit is None or hit[0] is not expr:
        hit = cache[id(expr)] = (expr, frozenset(A.bare_names(expr) & policy.states.keys()))
    return hit[1]
