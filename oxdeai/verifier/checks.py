"""The whole-policy checks `no_conflicts`, `coverage` and `no_dead_rules`, and their registry.

Contract (soundness): each check assumes I and reports `proved` only when every query
it rests on was `unsat`. `no_conflicts`: no request to a tool matches both an allow
and a deny rule (one result per overlapping pair), a deny rule marked `override` left
out: its overlaps are intended. `coverage`: every request to every
tool matches some rule. `no_dead_rules`: every rule matches some request, and every
allow rule decides one. Every violation's counterexample is replayed through the
engine; a witness shared between rules is one the engine itself showed alive.
`CHECKS` names every check once, with the text the SARIF rules show.
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.verifier.encode import Unsupported
from oxdeai.verifier.queries import Prover, Verdict
from oxdeai.verifier.replay import ReplayError, describe, engine_for, extract, replay
from oxdeai.verifier.results import Result
from oxdeai.verifier.solve import Answer
from oxdeai.verifier.symbolic import World


class Checks(Prover):
    share_witnesses = True  # no_dead_rules: let one witness request show other rules alive

    def ask_or_unknown(self, build: Callable[[World], list[Any]], tool: str,
                       on_counterexample: Callable[[dict[str, Any]], Verdict]) -> Verdict | None:
        """`ask`, with a construct the encoder cannot express making this one query `unknown`."""
        try:
            return self.ask(build, tool, on_counterexample)
        except Unsupported as exc:
            return Verdict("unknown", reason=exc.why)

    def no_conflicts(self) -> list[Result]:
        results = []
        tools_of = {id(r): [t for t in self.tools if A.matches_any(r.patterns, t)] for r in self.policy.rules}
        denies = [r for r in self.policy.rules if r.kind is A.RuleKind.DENY and not r.override]  # an override is meant
        for allow in [r for r in self.policy.rules if r.kind is A.RuleKind.ALLOW]:
            mine = set(tools_of[id(allow)])
            for deny in denies:
                pair = f"{allow.name} / {deny.name}"
                for tool in [t for t in tools_of[id(deny)] if t in mine]:  # in the policy's tool order
                    started = timer.perf_counter()

                    def build(w: World, a: A.RuleDecl = allow, d: A.RuleDecl = deny) -> list[Any]:
                        return [w.matches(a), w.matches(d), w.assume(self.inductive)]

                    def on_counterexample(cx: dict[str, Any], a: A.RuleDecl = allow, d: A.RuleDecl = deny,
                                          tool: str = tool) -> Verdict:
                        engine, decision = replay(self.policy, cx)
                        if not (engine.evaluate(a.when, cx["request"]) and engine.evaluate(d.when, cx["request"])):
                            raise ReplayError(f"conflict {a.name} / {d.name}", cx, describe(decision))
                        cx["outcome"] = f"matches allow `{a.name}` and deny `{d.name}`: {describe(decision)}"
                        return Verdict("violated", cx, f"allow `{a.name}` and deny `{d.name}` both match a `{tool}` call")

                    verdict = self.ask_or_unknown(build, tool, on_counterexample)
                    if verdict is None:
                        continue
                    span = deny.span if verdict.status == "violated" else allow.span
                    results.append(self.result("no_conflicts", verdict, span, started, pair))
                    break
        if not results:
            return [self.result("no_conflicts", Verdict("proved"), self.check_span("no_conflicts"),
                                timer.perf_counter())]
        return results

    def coverage(self) -> list[Result]:
        results = []
        span = self.check_span("coverage")
        for tool in self.tools:
            started = timer.perf_counter()

            def build(w: World) -> list[Any]:
                rules = [w.matches(r) for r in w.rules_for(A.RuleKind.ALLOW) + w.rules_for(A.RuleKind.DENY)]
                return [z3.Not(z3.Or(*rules)) if rules else z3.BoolVal(True), w.assume(self.inductive)]

            def on_counterexample(cx: dict[str, Any], tool: str = tool) -> Verdict:
                engine, decision = replay(self.policy, cx)
                part = self.policy.for_tool(tool)
                if any(engine.evaluate(r.when, cx["request"]) for r in part.denies + part.allows):
                    raise ReplayError(f"coverage of `{tool}`", cx, describe(decision))
                cx["outcome"] = f"no rule matches: {describe(decision)}"
                return Verdict("violated", cx, f"a `{tool}` call matches no rule")

            verdict = self.ask_or_unknown(build, tool, on_counterexample)
            if verdict is not None:
                results.append(self.result("coverage", verdict, span, started, tool))
        if not results:
            return [self.result("coverage", Verdict("proved"), span, timer.perf_counter())]
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
                results.append(self.result("no_dead_rules", Verdict(status, reason=reason), rule.span, started,
                                           rule.name))
        if not results:
            return [self.result("no_dead_rules", Verdict("proved"), self.check_span("no_dead_rules"),
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

    def check_span(self, name: str) -> A.Span:
        return next((d.span for d in self.policy.ast.decls if isinstance(d, A.CheckDecl) and d.name == name),
                    A.NO_SPAN)

    @staticmethod
    def result(name: str, verdict: Verdict, span: A.Span, started: float, detail: str | None = None) -> Result:
        return Result(name, "check", verdict.status, span, verdict.counterexample, verdict.reason,
                      int((timer.perf_counter() - started) * 1000), detail)


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Checks], list[Result]]
    summary: str  # the SARIF rule's short description


CHECKS: dict[str, Check] = {c.name: c for c in (
    Check("no_conflicts", Checks.no_conflicts, "An allow rule and a deny rule overlap"),
    Check("coverage", Checks.coverage, "A request is decided by no explicit rule"),
    Check("no_dead_rules", Checks.no_dead_rules, "A rule can never match, or never allow"),
)}
