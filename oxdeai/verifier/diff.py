"""`diff OLD NEW`: which requests does a policy change newly allow, or newly deny?

Contract: a request is newly allowed when NEW's full decision (stages 5-8) allows
it and OLD's does not (OLD decides it without the parameters OLD does not declare;
a request OLD's schema rejects otherwise counts as not allowed), for
some state satisfying both versions' inductive invariants I, where a state name
present in both is one entry. Each witness is replayed through both engines
before it is reported. Tools only in one version are reported as added / removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import z3

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.verifier.encode import Unsupported
from oxdeai.verifier.invariants import prove_invariants
from oxdeai.verifier.queries import Prover
from oxdeai.verifier.replay import ReplayError, describe, extract, replay
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Answer, solve
from oxdeai.verifier.symbolic import Vars, World, sort_of


@dataclass
class DiffReport:
    newly_allowed: list[dict[str, Any]] = field(default_factory=list)
    newly_denied: list[dict[str, Any]] = field(default_factory=list)
    added_tools: list[str] = field(default_factory=list)
    removed_tools: list[str] = field(default_factory=list)
    unknown: list[dict[str, str]] = field(default_factory=list)
    added_allowing: list[str] = field(default_factory=list)  # added tools NEW can allow

    def to_json(self) -> dict[str, Any]:
        return {"newly_allowed": self.newly_allowed, "newly_denied": self.newly_denied,
                "added_tools": self.added_tools, "removed_tools": self.removed_tools, "unknown": self.unknown}

    @property
    def new_access(self) -> bool:
        return bool(self.newly_allowed or self.added_allowing)


def diff_policies(old: CheckedPolicy, new: CheckedPolicy, timeout_s: float = DEFAULT_TIMEOUT,
                  budget: int = DEFAULT_BUDGET) -> DiffReport:
    old_v = Prover(old, prove_invariants(old, timeout_s, budget)[1], timeout_s, budget)
    new_v = Prover(new, prove_invariants(new, timeout_s, budget)[1], timeout_s, budget)
    report = DiffReport(added_tools=sorted(set(new.tools) - set(old.tools)),
                        removed_tools=sorted(set(old.tools) - set(new.tools)))
    for tool in sorted(set(new.tools) & set(old.tools)):
        for direction, gain, lose in (("newly_allowed", new_v, old_v), ("newly_denied", old_v, new_v)):
            try:
                witness = _witness(tool, gain, lose)
            except Unsupported as exc:
                report.unknown.append({"tool": tool, "direction": direction, "reason": exc.why})
                continue
            if isinstance(witness, str):
                report.unknown.append({"tool": tool, "direction": direction, "reason": witness})
            elif witness is not None:
                getattr(report, direction).append(witness)
    for tool in report.added_tools:
        try:
            world = World(new, tool)
            result = solve([world.schema(), world.decide(), world.assume(new_v.inductive)], timeout_s,
                           budget=budget)
        except Unsupported as exc:
            report.unknown.append({"tool": tool, "direction": "added", "reason": exc.why})
            continue
        if result.answer is Answer.UNKNOWN:
            report.unknown.append({"tool": tool, "direction": "added", "reason": result.reason or "the solver gave up"})
        elif result.answer is Answer.FAILS:
            report.added_allowing.append(tool)
    return report


def _witness(tool: str, gain: Prover, lose: Prover) -> dict[str, Any] | str | None:
    """A request `gain` allows and `lose` does not, or None; a string says why unknown."""
    shared = Vars()
    g = World(gain.policy, tool, shared, presence=True)
    lo = World(lose.policy, tool, shared, presence=True)
    _same_sorts(gain.policy, lose.policy, tool)
    carried, lose_accepts = _carried_args(g, lo)
    lose_valid = z3.And(lo.schema(), *lose_accepts)
    constraints = [g.schema(), *carried, g.decide(), z3.Not(z3.And(lose_valid, lo.decide()))]
    touched = set(g.pre) | set(lo.pre)
    constraints += [g.assume(gain.inductive, touched), lo.assume(lose.inductive, touched)]
    result = solve(constraints, gain.timeout, g.wishes(), gain.budget)
    if result.answer is Answer.HOLDS:
        return None
    if result.answer is Answer.UNKNOWN:
        return result.reason or "the solver gave up"
    assert result.model is not None
    cx_gain = extract(g, result.model)
    cx_lose = extract(lo, result.model)
    for key in ("nonce", "idempotency_key"):  # what either version requires, so both replay
        if key in cx_lose["request"]:
            cx_gain["request"].setdefault(key, cx_lose["request"][key])
    _, gained = replay(gain.policy, cx_gain)
    declared = {p.name for p in lose.policy.tools[tool].params}
    as_lost = dict(cx_gain["request"], args={k: v for k, v in cx_gain["request"]["args"].items() if k in declared})
    _, lost = replay(lose.policy, {"request": as_lost, "state": cx_lose["state"]})
    if not gained.allowed or lost.allowed:
        raise ReplayError(f"diff witness for `{tool}`", cx_gain, f"{describe(gained)} / {describe(lost)}")
    witness: dict[str, Any] = {"tool": tool, "request": cx_gain["request"], "state": _merge(cx_gain, cx_lose)}
    if cx_gain["state"] != cx_lose["state"]:
        witness["state_by_version"] = {gain.policy.path: cx_gain["state"], lose.policy.path: cx_lose["state"]}
    witness["outcome"] = {gain.policy.path: describe(gained), lose.policy.path: describe(lost)}
    return witness


def _carried_args(g: World, lo: World) -> tuple[list[Any], list[Any]]:
    """The request is one the gaining version accepts, so it carries only parameters that
    version declares. The losing version decides it without the parameters it does not
    declare (a new optional parameter is a compatible change: the same call without it
    is what the old version was asked); it rejects one that carries a parameter it
    declares with another type. Its own required ones are in its schema, and an omitted
    one of its own takes its default."""
    carried = [z3.Not(lo.present[n]) for n in lo.args if n not in g.args]
    lose_accepts = [z3.Not(g.present[n]) for n in g.args if n in lo.args and g.provided[n] is not lo.provided[n]]
    return carried, lose_accepts


def _same_sorts(a: CheckedPolicy, b: CheckedPolicy, tool: str) -> None:
    for name in set(a.states) & set(b.states):
        if sort_of(a.states[name].type) != sort_of(b.states[name].type):
            raise Unsupported(a.states[name].span, f"state `{name}` has different types in the two versions")


def _merge(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    merged = dict(y["state"])
    merged.update(x["state"])
    return merged
