"""`verify`: invariants (Houdini), assertions and the whole-policy checks.

Contract (soundness): a result is `proved` only when every query it rests on was
answered `unsat` by Z3 over an exact encoding; any `unknown` answer or
`Unsupported` construct makes it `unknown` with the reason. Every property
assumes only `I`, the largest set of invariants that holds initially and is
preserved together (the Houdini method). A `violated` result carries a
counterexample that has been replayed through the engine and reproduced.
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import EXPIRED, OUTCOMES
from oxdeai.verifier.encode import Env, Unsupported, encode_expr
from oxdeai.verifier.replay import ReplayError, describe, engine_for, extract, replay
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIME, DEFAULT_TIMEOUT, Answer, Outcome, solve
from oxdeai.verifier.symbolic import Vars, World, invariant_fits, state_reads, tool_writes


@dataclass
class Result:
    property: str
    kind: str  # invariant | assertion | check
    status: str  # proved | violated | unknown
    span: A.Span
    counterexample: dict[str, Any] | None = None
    reason: str | None = None
    time_ms: int = 0
    detail: str | None = None  # e.g. the conflicting pair, the uncovered tool

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"property": self.property, "kind": self.kind, "status": self.status,
                               "counterexample": self.counterexample, "reason": self.reason,
                               "time_ms": self.time_ms, "line": self.span.line, "column": self.span.column}
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class _Verdict:
    status: str
    counterexample: dict[str, Any] | None = None
    reason: str | None = None


def _prefer(world: World) -> list[list[Any]]:
    """Tiers of wishes for readable counterexamples: a fixed time, short printable
    strings (agent fields non-empty, as they key state), small numbers."""
    strings = [v for v in list(world.args.values()) + list(world.agent.values()) if v.sort() == z3.StringSort()]
    ints = [v for v in list(world.args.values()) + list(world.agent.values()) if v.sort() == z3.IntSort()]
    agent_strings = [v for v in world.agent.values() if v.sort() == z3.StringSort()]
    word = z3.Star(z3.Union(z3.Range("a", "z"), z3.Range("0", "9"), z3.Re("_"), z3.Re("-")))
    printable = z3.Star(z3.Range(" ", "~"))
    basic = [world.time == DEFAULT_TIME, *[z3.Length(v) <= 12 for v in strings],
             *[z3.And(v >= -1000, v <= 100_000) for v in ints]]
    named = [z3.Length(v) >= 1 for v in agent_strings]
    return [basic + named + [z3.InRe(v, word) for v in strings],
            basic + named + [z3.InRe(v, printable) for v in strings],
            basic, [world.time == DEFAULT_TIME]]


class Verifier:
    share_witnesses = True  # no_dead_rules: let one witness request show other rules alive

    def __init__(self, policy: CheckedPolicy, timeout_s: float = DEFAULT_TIMEOUT,
                 budget: int = DEFAULT_BUDGET) -> None:
        self.policy = policy
        self.timeout = timeout_s
        self.budget = budget
        self.tools = list(policy.tools)

    # ---- one query --------------------------------------------------------------

    def query(self, build: Callable[[World], list[Any]], tool: str, outcome: str | None = None,
              readable: bool = True) -> tuple[Outcome, World]:
        """`readable=False` when no one will read the model: skips the wishes for small values."""
        world = World(self.policy, tool, Vars(), outcome)
        constraints = [world.schema(), *build(world)]
        return solve(constraints, self.timeout, _prefer(world) if readable else None, self.budget), world

    # ---- invariants ---------------------------------------------------------------

    def houdini(self) -> dict[str, _Verdict]:
        invariants = list(self.policy.invariants)
        verdicts: dict[str, _Verdict] = {}
        current = list(invariants)
        changed = True
        while changed:
            changed = False
            for inv in list(current):
                verdict = self.check_invariant(inv, current)
                if verdict.status != "proved":
                    verdicts[inv.name] = verdict
                    current.remove(inv)
                    changed = True
                    break  # re-check the rest under the smaller I
        self.inductive = current
        for inv in current:
            verdicts[inv.name] = _Verdict("proved")
        for inv in invariants:  # counterexamples against the final I, as the report promises
            if inv not in current and verdicts[inv.name].status == "violated":
                verdicts[inv.name] = self.check_invariant(inv, [*current, inv])
        return verdicts

    def check_invariant(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl]) -> _Verdict:
        try:
            initial = self.initially(inv)
            if initial is not None:
                return initial
            for tool in self.tools:
                verdict = self.step(inv, assumed, tool)
                if verdict is not None:
                    return verdict
            verdict = self.rollover(inv, assumed)
            if verdict is not None:
                return verdict
            for tool in self.tools:
                for outcome in OUTCOMES:
                    verdict = self.completion(inv, assumed, tool, outcome)
                    if verdict is not None:
                        return verdict
            if inv.limit is not None:
                verdict = self.limit_amounts(inv.limit, assumed)
                if verdict is not None:
                    return verdict
        except Unsupported as exc:
            return _Verdict("unknown", reason=f"line {exc.span.line}: {exc.why}")
        return _Verdict("proved")

    def initially(self, inv: A.InvariantDecl) -> _Verdict | None:
        inits = {s.name: s.init.value for s in self.policy.states.values()}
        env = Env({}, {}, z3.IntVal(0), "", lambda n: z3.IntVal(inits[n]) if isinstance(inits[n], int)
                  and not isinstance(inits[n], bool) else z3.BoolVal(inits[n]), self.policy.consts)
        result = solve([z3.Not(encode_expr(inv.expr, env))], self.timeout, budget=self.budget)
        if result.answer is Answer.FAILS:
            return _Verdict("violated", reason="the invariant does not hold on the initial values",
                            counterexample={"state": {}})
        if result.answer is Answer.UNKNOWN:
            return _Verdict("unknown", reason=result.reason)
        return None

    def step(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl], tool: str) -> _Verdict | None:
        if not invariant_fits(self.policy, inv, tool) or \
                not (state_reads(inv.expr, self.policy) & tool_writes(self.policy, tool, False)):
            return None

        def build(w: World) -> list[Any]:
            return [w.rules(), z3.Not(w.invariant(inv, w.post())), w.assume(assumed)]

        result, world = self.query(build, tool)
        if result.answer is Answer.HOLDS:
            return None
        if result.answer is Answer.UNKNOWN:
            return _Verdict("unknown", reason=result.reason)
        assert result.model is not None
        cx = extract(world, result.model)
        engine, decision = replay(self.policy, cx, guard=False)
        if not decision.allowed or engine.evaluate(inv.expr, cx["request"]):
            raise ReplayError(f"invariant `{inv.name}`: the rules should allow the call and break the invariant",
                              cx, describe(decision))
        _, guarded = replay(self.policy, cx)
        cx["outcome"] = (f"`{tool}` is allowed by the rules and its effects break `{inv.name}`; "
                         f"at run time the engine answers {describe(guarded)}")
        reason = (f"not preserved by `{tool}`; the pre-state satisfies every invariant in I but may be "
                  f"unreachable: if so, add an invariant that excludes it, or a condition on the rule")
        return _Verdict("violated", cx, reason)

    def rollover(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl]) -> _Verdict | None:
        names = sorted(state_reads(inv.expr, self.policy))
        windows = {n: self.policy.states[n].window for n in names}
        if not any(windows.values()):
            return None
        t1, t2 = z3.Int("t1"), z3.Int("t2")
        stored = {n: z3.Const(f"stored.{n}", _sort(self.policy, n)) for n in names}
        written = {n: z3.Int(f"written.{n}") for n in names}

        def effective(t: Any) -> dict[str, Any]:
            out = {}
            for n in names:
                w = windows[n]
                init = _value(self.policy.states[n].init.value)
                out[n] = stored[n] if w is None else z3.If(written[n] / w.seconds == t / w.seconds, stored[n], init)
            return out

        def holds(expr: A.Expr, values: dict[str, Any]) -> Any:
            return encode_expr(expr, Env({}, {}, t1, "", lambda n: values[n], self.policy.consts))

        related = [i for i in assumed if state_reads(i.expr, self.policy) <= set(names)]
        at1, at2 = effective(t1), effective(t2)
        constraints = [t1 >= 0, t2 >= t1, *[z3.And(written[n] >= 0, written[n] <= t1) for n in names],
                       *[holds(i.expr, at1) for i in related], z3.Not(holds(inv.expr, at2))]
        result = solve(constraints, self.timeout, budget=self.budget)
        if result.answer is Answer.HOLDS:
            return None
        if result.answer is Answer.UNKNOWN:
            return _Verdict("unknown", reason=result.reason)
        return _Verdict("unknown", reason="not preserved when windows roll over (entries with different windows "
                        "reset at different times); replaying roll-over counterexamples is not supported yet")

    def completion(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl], tool: str,
                   outcome: str) -> _Verdict | None:
        writes = tool_writes(self.policy, tool, True)
        if not invariant_fits(self.policy, inv, tool) or not (state_reads(inv.expr, self.policy) & writes):
            return None
        if outcome == EXPIRED and not any(g.lease and A.matches_any(g.patterns, tool) for g in self.policy.gates):
            return None

        def build(w: World) -> list[Any]:
            return [z3.Not(w.invariant(inv, w.post(on_complete=True))), w.assume(assumed)]

        result, _ = self.query(build, tool, outcome)
        if result.answer is Answer.HOLDS:
            return None
        if result.answer is Answer.UNKNOWN:
            return _Verdict("unknown", reason=result.reason)
        return _Verdict("unknown", reason=f"not shown to be preserved when a `{tool}` call completes with "
                        f"outcome \"{outcome}\"; no replayable counterexample is produced for completions yet")

    def limit_amounts(self, limit: str, assumed: list[A.InvariantDecl]) -> _Verdict | None:
        gate = next(g for g in self.policy.gates if g.name == limit)
        for tool in self.tools:
            if not A.matches_any(gate.patterns, tool):
                continue

            def build(w: World) -> list[Any]:  # on a state satisfying I, as every property but a step
                return [encode_expr(gate.amount, w.env()) < 0, w.assume(assumed)]

            result, world = self.query(build, tool)
            if result.answer is Answer.UNKNOWN:
                return _Verdict("unknown", reason=result.reason)
            if result.answer is Answer.FAILS:
                assert result.model is not None
                cx = extract(world, result.model)
                engine, decision = replay(self.policy, cx)
                if engine.evaluate(gate.amount, cx["request"]) >= 0:
                    raise ReplayError(f"limit `{limit}`: the amount should be negative", cx, describe(decision))
                cx["outcome"] = f"the `sum` expression of `{limit}` is negative; the engine answers {describe(decision)}"
                return _Verdict("violated", cx, f"the `sum` expression can be negative for `{tool}`")
        return None

    # ---- assertions ------------------------------------------------------------------

    def assertion(self, decl: A.AssertDecl) -> _Verdict:
        try:
            for tool in self.tools:
                if not A.matches_any(decl.patterns, tool):
                    continue
                if decl.mode is A.AssertMode.NEVER:
                    def build(w: World) -> list[Any]:
                        return [w.decide(), w.holds(decl.when), w.assume(self.inductive)]
                else:
                    def build(w: World) -> list[Any]:
                        return [w.holds(decl.when), z3.Not(w.decide()), w.assume(self.inductive)]
                result, world = self.query(build, tool)
                if result.answer is Answer.UNKNOWN:
                    return _Verdict("unknown", reason=result.reason)
                if result.answer is Answer.FAILS:
                    assert result.model is not None
                    cx = extract(world, result.model)
                    condition = engine_for(self.policy, cx).evaluate(decl.when, cx["request"])  # on the pre-state
                    _, decision = replay(self.policy, cx)
                    expected = decl.mode is A.AssertMode.NEVER
                    if decision.allowed != expected or not condition:
                        raise ReplayError(f"assertion `{decl.name}`", cx, describe(decision))
                    cx["outcome"] = describe(decision)
                    what = "is allowed" if expected else "is denied"
                    return _Verdict("violated", cx, f"a `{tool}` call {what} ({describe(decision)})")
        except Unsupported as exc:
            return _Verdict("unknown", reason=f"line {exc.span.line}: {exc.why}")
        return _Verdict("proved")

    # ---- whole-policy checks ----------------------------------------------------------

    def no_conflicts(self) -> list[Result]:
        results = []
        tools_of = {id(r): [t for t in self.tools if A.matches_any(r.patterns, t)] for r in self.policy.rules}
        denies = [r for r in self.policy.rules if r.kind is A.RuleKind.DENY]
        for allow in [r for r in self.policy.rules if r.kind is A.RuleKind.ALLOW]:
            mine = set(tools_of[id(allow)])
            for deny in denies:
                for tool in [t for t in tools_of[id(deny)] if t in mine]:  # in the policy's tool order
                    started = timer.perf_counter()
                    try:
                        def build(w: World, a: A.RuleDecl = allow, d: A.RuleDecl = deny) -> list[Any]:
                            return [w.matches(a), w.matches(d), w.assume(self.inductive)]
                        result, world = self.query(build, tool)
                    except Unsupported as exc:
                        results.append(self._result("no_conflicts", "unknown", allow.span, started,
                                                    reason=exc.why, detail=f"{allow.name} / {deny.name}"))
                        break
                    if result.answer is Answer.HOLDS:
                        continue
                    if result.answer is Answer.UNKNOWN:
                        results.append(self._result("no_conflicts", "unknown", allow.span, started,
                                                    reason=result.reason, detail=f"{allow.name} / {deny.name}"))
                        break
                    assert result.model is not None
                    cx = extract(world, result.model)
                    engine, decision = replay(self.policy, cx)
                    if not (engine.evaluate(allow.when, cx["request"]) and engine.evaluate(deny.when, cx["request"])):
                        raise ReplayError(f"conflict {allow.name} / {deny.name}", cx, describe(decision))
                    cx["outcome"] = f"matches allow `{allow.name}` and deny `{deny.name}`: {describe(decision)}"
                    results.append(self._result(
                        "no_conflicts", "violated", deny.span, started, cx,
                        reason=f"allow `{allow.name}` and deny `{deny.name}` both match a `{tool}` call",
                        detail=f"{allow.name} / {deny.name}"))
                    break
        if not any(r.status != "proved" for r in results):
            return [self._result("no_conflicts", "proved", _check_span(self.policy, "no_conflicts"),
                                 timer.perf_counter())]
        return results

    def coverage(self) -> list[Result]:
        results = []
        span = _check_span(self.policy, "coverage")
        for tool in self.tools:
            started = timer.perf_counter()
            try:
                def build(w: World) -> list[Any]:
                    rules = [w.matches(r) for r in w.rules_for(A.RuleKind.ALLOW) + w.rules_for(A.RuleKind.DENY)]
                    return [z3.Not(z3.Or(*rules)) if rules else z3.BoolVal(True), w.assume(self.inductive)]
                result, world = self.query(build, tool)
            except Unsupported as exc:
                results.append(self._result("coverage", "unknown", span, started, reason=exc.why, detail=tool))
                continue
            if result.answer is Answer.HOLDS:
                continue
            if result.answer is Answer.UNKNOWN:
                results.append(self._result("coverage", "unknown", span, started, reason=result.reason, detail=tool))
                continue
            assert result.model is not None
            cx = extract(world, result.model)
            engine, decision = replay(self.policy, cx)
            rules = [r for r in self.policy.rules if A.matches_any(r.patterns, tool)]
            if any(engine.evaluate(r.when, cx["request"]) for r in rules):
                raise ReplayError(f"coverage of `{tool}`", cx, describe(decision))
            cx["outcome"] = f"no rule matches: {describe(decision)}"
            results.append(self._result("coverage", "violated", span, started, cx,
                                        reason=f"a `{tool}` call matches no rule", detail=tool))
        if not results:
            return [self._result("coverage", "proved", span, timer.perf_counter())]
        return results

    def no_dead_rules(self) -> list[Result]:
        """Every rule matches some request and state with I; every allow rule can decide one."""
        results = []
        self._live: set[tuple[str, bool]] = set()  # (rule, decides) shown by a replayed witness
        for rule in self.policy.rules:
            if (rule.name, rule.kind is A.RuleKind.ALLOW) in self._live:
                continue  # another rule's witness request already shows this one alive
            started = timer.perf_counter()
            tools = [t for t in self.tools if A.matches_any(rule.patterns, t)]
            status, reason = "proved", None
            try:
                # an allow rule that decides some request also matches one: ask that first
                found, unknown = self._some_request(rule, tools, rule.kind is A.RuleKind.ALLOW)
                if not found and rule.kind is A.RuleKind.ALLOW and not unknown:
                    matched, unknown = self._some_request(rule, tools, False)
                    status = "unknown" if unknown else "violated"
                    reason = unknown or (f"rule `{rule.name}` matches but can never allow a call" if matched
                                         else f"rule `{rule.name}` never matches")
                elif not found:
                    status = "unknown" if unknown else "violated"
                    reason = unknown or f"rule `{rule.name}` never matches"
            except Unsupported as exc:
                status, reason = "unknown", exc.why
            if status != "proved":
                results.append(self._result("no_dead_rules", status, rule.span, started, reason=reason,
                                            detail=rule.name))
        if not results:
            return [self._result("no_dead_rules", "proved", _check_span(self.policy, "no_dead_rules"),
                                 timer.perf_counter())]
        return results

    def _some_request(self, rule: A.RuleDecl, tools: list[str], decided: bool) -> tuple[bool, str | None]:
        unknown = None
        for tool in tools:
            def build(w: World) -> list[Any]:
                return [w.matches(rule), *([w.decide()] if decided else []), w.assume(self.inductive)]
            result, world = self.query(build, tool, readable=False)
            if result.answer is Answer.FAILS:
                if self.share_witnesses:
                    assert result.model is not None
                    self._note_witness(world, result.model)
                return True, None
            if result.answer is Answer.UNKNOWN:
                unknown = result.reason
        return False, unknown

    def _note_witness(self, world: World, model: z3.ModelRef) -> None:
        """Run the witness request through the engine and note every rule it shows alive:
        each rule whose condition the interpreter finds true matches it, and each rule the
        engine names in `allowed_by` decides it. Concrete evaluation, so never unsound;
        it only spares the queries for those rules."""
        cx = extract(world, model)
        before = engine_for(self.policy, cx)
        _, decision = replay(self.policy, cx)
        for rule in world.rules_for(A.RuleKind.ALLOW) + world.rules_for(A.RuleKind.DENY):
            if before.evaluate(rule.when, cx["request"]) is True:
                self._live.add((rule.name, False))
                if decision.allowed and rule.name in decision.allowed_by:
                    self._live.add((rule.name, True))

    def _result(self, name: str, status: str, span: A.Span, started: float, cx: dict[str, Any] | None = None,
                reason: str | None = None, detail: str | None = None) -> Result:
        return Result(name, "check", status, span, cx, reason, int((timer.perf_counter() - started) * 1000), detail)

    # ---- everything -------------------------------------------------------------------

    def run(self) -> list[Result]:
        results: list[Result] = []
        started = timer.perf_counter()
        verdicts = self.houdini()
        elapsed = int((timer.perf_counter() - started) * 1000)
        for inv in self.policy.invariants:
            v = verdicts[inv.name]
            results.append(Result(inv.name, "invariant", v.status, inv.span, v.counterexample, v.reason, elapsed))
        for decl in self.policy.asserts:
            started = timer.perf_counter()
            v = self.assertion(decl)
            results.append(Result(decl.name, "assertion", v.status, decl.span, v.counterexample, v.reason,
                                  int((timer.perf_counter() - started) * 1000)))
        for check in self.policy.checks:
            results.extend({"no_conflicts": self.no_conflicts, "coverage": self.coverage,
                            "no_dead_rules": self.no_dead_rules}[check]())
        return results


def verify_policy(policy: CheckedPolicy, timeout_s: float = DEFAULT_TIMEOUT,
                  budget: int = DEFAULT_BUDGET) -> list[Result]:
    return Verifier(policy, timeout_s, budget).run()


def _check_span(policy: CheckedPolicy, name: str) -> A.Span:
    return next((d.span for d in policy.ast.decls if isinstance(d, A.CheckDecl) and d.name == name), A.NO_SPAN)


def _sort(policy: CheckedPolicy, name: str) -> z3.SortRef:
    return z3.IntSort() if isinstance(policy.states[name].type, A.IntType) else z3.BoolSort()


def _value(value: Any) -> Any:
    return z3.BoolVal(value) if isinstance(value, bool) else z3.IntVal(value)
