"""Invariants: which hold initially and are preserved by every step (the Houdini method).

Contract (soundness): `prove_invariants` returns a verdict per invariant and I, the
largest set of invariants that holds initially and is preserved together: by every
tool's allowed call (stage 8 off, so a proof never leans on the guard), by windows
rolling over, by every completion outcome, and for a limit's invariant by its `sum`
never being negative. An invariant is `proved` only when every such query was `unsat`;
an `unknown` answer or an `Unsupported` construct makes it `unknown`. A `violated`
step carries a counterexample replayed through the engine; roll-over and completion
failures are reported `unknown`, as they have no replayable counterexample yet.
"""

from __future__ import annotations

from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import EXPIRED, OUTCOMES
from oxdeai.verifier.encode import Env, Unsupported, encode_expr
from oxdeai.verifier.queries import Prover, Verdict
from oxdeai.verifier.replay import ReplayError, describe, replay
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIMEOUT, solve
from oxdeai.verifier.symbolic import World, invariant_fits, state_reads, tool_writes


def prove_invariants(policy: CheckedPolicy, timeout_s: float = DEFAULT_TIMEOUT,
                     budget: int = DEFAULT_BUDGET) -> tuple[dict[str, Verdict], list[A.InvariantDecl]]:
    """Every invariant's verdict, and I."""
    return Invariants(policy, timeout_s, budget).houdini()


class Invariants(Prover):
    def __init__(self, policy: CheckedPolicy, timeout_s: float, budget: int) -> None:
        super().__init__(policy, list(policy.invariants), timeout_s, budget)

    def houdini(self) -> tuple[dict[str, Verdict], list[A.InvariantDecl]]:
        invariants = list(self.policy.invariants)
        verdicts: dict[str, Verdict] = {}
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
        for inv in current:
            verdicts[inv.name] = Verdict("proved")
        for inv in invariants:  # counterexamples against the final I, as the report promises
            if inv not in current and verdicts[inv.name].status == "violated":
                verdicts[inv.name] = self.check_invariant(inv, [*current, inv])
        self.inductive = current
        return verdicts, current

    def check_invariant(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl]) -> Verdict:
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
            return Verdict("unknown", reason=f"line {exc.span.line}: {exc.why}")
        return Verdict("proved")

    def initially(self, inv: A.InvariantDecl) -> Verdict | None:
        inits = {s.name: s.init.value for s in self.policy.states.values()}
        env = Env({}, {}, z3.IntVal(0), "", lambda n: _value(inits[n]), self.policy.consts)
        return self.conclude(solve([z3.Not(encode_expr(inv.expr, env))], self.timeout, budget=self.budget),
                             lambda model: Verdict("violated", {"state": {}},
                                                   "the invariant does not hold on the initial values"))

    def step(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl], tool: str) -> Verdict | None:
        if not invariant_fits(self.policy, inv, tool) or \
                not (state_reads(inv.expr, self.policy) & tool_writes(self.policy, tool, False)):
            return None

        def build(w: World) -> list[Any]:
            return [w.rules(), z3.Not(w.invariant(inv, w.post())), w.assume(assumed)]

        def on_counterexample(cx: dict[str, Any]) -> Verdict:
            engine, decision = replay(self.policy, cx, guard=False)
            if not decision.allowed or engine.evaluate(inv.expr, cx["request"]):
                raise ReplayError(f"invariant `{inv.name}`: the rules should allow the call and break the invariant",
                                  cx, describe(decision))
            _, guarded = replay(self.policy, cx)
            cx["outcome"] = (f"`{tool}` is allowed by the rules and its effects break `{inv.name}`; "
                             f"at run time the engine answers {describe(guarded)}")
            return Verdict("violated", cx, f"not preserved by `{tool}`; the pre-state satisfies every invariant "
                           "in I but may be unreachable: if so, add an invariant that excludes it, or a "
                           "condition on the rule")

        return self.ask(build, tool, on_counterexample)

    def rollover(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl]) -> Verdict | None:
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
        return self.conclude(solve(constraints, self.timeout, budget=self.budget), lambda model: Verdict(
            "unknown", reason="not preserved when windows roll over (entries with different windows reset at "
            "different times); replaying roll-over counterexamples is not supported yet"))

    def completion(self, inv: A.InvariantDecl, assumed: list[A.InvariantDecl], tool: str,
                   outcome: str) -> Verdict | None:
        writes = tool_writes(self.policy, tool, True)
        if not invariant_fits(self.policy, inv, tool) or not (state_reads(inv.expr, self.policy) & writes):
            return None
        if outcome == EXPIRED and self.policy.for_tool(tool).lease is None:
            return None

        def build(w: World) -> list[Any]:
            return [z3.Not(w.invariant(inv, w.post(on_complete=True))), w.assume(assumed)]

        result, _ = self.query(build, tool, outcome)
        return self.conclude(result, lambda model: Verdict(
            "unknown", reason=f"not shown to be preserved when a `{tool}` call completes with outcome "
            f"\"{outcome}\"; no replayable counterexample is produced for completions yet"))

    def limit_amounts(self, limit: str, assumed: list[A.InvariantDecl]) -> Verdict | None:
        gate = next(g for g in self.policy.gates if g.name == limit)
        for tool in self.tools:
            if gate not in self.policy.for_tool(tool).gates:
                continue

            def build(w: World) -> list[Any]:  # on a state satisfying I, as every property but a step
                return [encode_expr(gate.amount, w.env()) < 0, w.assume(assumed)]

            def on_counterexample(cx: dict[str, Any], tool: str = tool) -> Verdict:
                engine, decision = replay(self.policy, cx)
                if engine.evaluate(gate.amount, cx["request"]) >= 0:
                    raise ReplayError(f"limit `{limit}`: the amount should be negative", cx, describe(decision))
                cx["outcome"] = f"the `sum` expression of `{limit}` is negative; the engine answers {describe(decision)}"
                return Verdict("violated", cx, f"the `sum` expression can be negative for `{tool}`")

            verdict = self.ask(build, tool, on_counterexample)
            if verdict is not None:
                return verdict
        return None


def _sort(policy: CheckedPolicy, name: str) -> z3.SortRef:
    return z3.IntSort() if isinstance(policy.states[name].type, A.IntType) else z3.BoolSort()


def _value(value: Any) -> Any:
    return z3.BoolVal(value) if isinstance(value, bool) else z3.IntVal(value)
