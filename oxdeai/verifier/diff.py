"""`diff OLD NEW`: which requests does a policy change newly allow, or newly deny?

Contract: a request is newly allowed when NEW's full decision (stages 5-8) allows
it and OLD's does not (a request OLD's schema rejects counts as not allowed), for
some state satisfying both versions' inductive invariants I, where a state name
present in both is one entry. Each witness is replayed through both engines
before it is reported. Tools only in one version are reported as added / removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import z3

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.verifier.counterexample import ReplayError, describe, extract, replay
from oxdeai.verifier.encode import Unsupported
from oxdeai.verifier.properties import Verifier, _prefer
from oxdeai.verifier.solve import Answer, solve
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


def diff_policies(old: CheckedPolicy, new: CheckedPolicy, timeout_s: float = 10.0) -> DiffReport:
    old_v, new_v = Verifier(old, timeout_s), Verifier(new, timeout_s)
    old_v.houdini()
    new_v.houdini()
    report = DiffReport(added_tools=sorted(set(new.tools) - set(old.tools)),
                        removed_tools=sorted(set(old.tools) - set(new.tools)))
    for tool in sorted(set(new.tools) & set(old.tools)):
        for direction, gain, lose in (("newly_allowed", new_v, old_v), ("newly_denied", old_v, new_v)):
            try:
                witness = _witness(tool, gain, lose, timeout_s)
            except Unsupported as exc:
                report.unknown.append({"tool": tool, "direction": direction, "reason": exc.why})
                continue
            if isinstance(witness, str):
                report.unknown.append({"tool": tool, "direction": direction, "reason": witness})
            elif witness is not None:
                getattr(report, direction).append(witness)
    for tool in report.added_tools:
        world = World(new, tool)
        decided = world.decide()
        result = solve([world.schema(), decided, world.assume(new_v.inductive)], timeout_s)
        if result.answer is not Answer.HOLDS:
            report.added_allowing.append(tool)
    return report


def _witness(tool: str, gain: Verifier, lose: Verifier, timeout_s: float) -> dict[str, Any] | str | None:
    """A request `gain` allows and `lose` does not, or None; a string says why unknown."""
    shared = Vars()
    g = World(gain.policy, tool, shared)
    lo = World(lose.policy, tool, shared)
    _same_sorts(gain.policy, lose.policy, tool)
    lose_valid = z3.And(lo.schema(), *_args_match(g, lo))
    constraints = [g.schema(), g.decide(), z3.Not(z3.And(lose_valid, lo.decide()))]
    touched = set(g.pre) | set(lo.pre)
    constraints += [g.assume(gain.inductive, touched), lo.assume(lose.inductive, touched)]
    result = solve(constraints, timeout_s, _prefer(g))
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
    _, lost = replay(lose.policy, {"request": cx_gain["request"], "state": cx_lose["state"]})
    if not gained.allowed or lost.allowed:
        raise ReplayError(f"diff witness for `{tool}`", cx_gain, f"{describe(gained)} / {describe(lost)}")
    witness: dict[str, Any] = {"tool": tool, "request": cx_gain["request"], "state": _merge(cx_gain, cx_lose)}
    if cx_gain["state"] != cx_lose["state"]:
        witness["state_by_version"] = {gain.policy.path: cx_gain["state"], lose.policy.path: cx_lose["state"]}
    witness["outcome"] = {gain.policy.path: describe(gained), lose.policy.path: describe(lost)}
    return witness


def _args_match(g: World, lo: World) -> list[Any]:
    """The request carries exactly the gaining version's parameters: the losing version
    accepts it only if it declares the same ones (with the same sorts)."""
    if set(g.args) != set(lo.args) or any(g.args[n] is not lo.args[n] for n in g.args):
        return [z3.BoolVal(False)]
    return []


def _same_sorts(a: CheckedPolicy, b: CheckedPolicy, tool: str) -> None:
    for name in set(a.states) & set(b.states):
        if sort_of(a.states[name].type) != sort_of(b.states[name].type):
            raise Unsupported(a.states[name].span, f"state `{name}` has different types in the two versions")


def _merge(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    merged = dict(y["state"])
    merged.update(x["state"])
    return merged
