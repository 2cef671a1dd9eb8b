"""Running a test file's cases through the engine, and comparing with what they expect.

Contract: every case runs on an engine of its own over a fresh in-memory store (its
`state` imported first), so cases never see each other. A request without `time` is
decided at the latest time its case has shown, else at 0: a test never reads the wall
clock. A trace's `{"complete": N}` names an earlier request line of the same trace
(0-based), as `oxdeai eval --trace` does. A `verify` case compares each named
property's status (a property with several results — a check — is `violated` if any
is, `proved` if all are, else `unknown`). `CaseResult.failures` is empty when the case
passes; each failure is one line: what was expected, what came instead, and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.policytest.spec import Case, Expect
from oxdeai.runtime.completions import CompletionError
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.models import Decision
from oxdeai.runtime.schema import split_request
from oxdeai.runtime.state_files import StateFileError


@dataclass
class Seen:
    """What the cases did, for coverage: every decision, every completion's tool and effects."""

    decisions: list[Decision] = field(default_factory=list)
    completions: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # (tool, effects)


@dataclass
class CaseResult:
    name: str
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def see(self, time: Any) -> None:
        if type(time) is int:
            self.now = max(self.now, time)


def run_case(policy: CheckedPolicy, case: Case, seen: Seen, verdicts: Any) -> CaseResult:
    """`verdicts()` gives `verify`'s results for the policy (computed once per file)."""
    if case.verify is not None:
        return CaseResult(case.name, _compare_verify(case.verify, verdicts()))
    clock = Clock()
    engine = Engine(policy, clock=clock)
    lines = [case.request] if case.request is not None else list(case.trace or [])
    expects = [case.expect] if isinstance(case.expect, Expect) else list(case.expect or [])
    if case.state is not None:
        first = next((line.get("time") for line in lines if type(line.get("time")) is int), None)
        try:
            engine.import_state(case.state, first)
        except StateFileError as exc:
            return CaseResult(case.name, [f"the starting state does not fit the policy: {exc}"])
    failures: list[str] = []
    decided: dict[int, Decision] = {}
    for index, (line, expect) in enumerate(zip(lines, expects, strict=True)):
        where = f"line {index}: " if case.trace is not None else ""
        clock.see(line.get("time"))
        if "complete" in line:
            failures += [where + f for f in _complete(engine, line, decided, expect, seen)]
            continue
        call, context = split_request(line)
        decision = engine.decide(call, context)
        decided[index] = decision
        seen.decisions.append(decision)
        if expect is not None:
            failures += [where + f for f in compare(expect, decision)]
    return CaseResult(case.name, failures)


def _complete(engine: Engine, line: dict[str, Any], decided: dict[int, Decision], expect: Expect | None,
              seen: Seen) -> list[str]:
    target = decided.get(line["complete"]) if type(line["complete"]) is int else None
    if target is None:
        return ["`complete` must name an earlier request line of this trace (0-based)"]
    try:
        effects = engine.complete(target.decision_id, line.get("outcome", "ok"), line.get("time"))
    except CompletionError as exc:
        if expect is not None and expect.error is not None and expect.error in str(exc):
            return []
        return [f"the completion failed: {exc}"]
    seen.completions.append((target.tool or "", effects))
    if expect is None:
        return []
    if expect.error is not None:
        return [f"expected the completion to fail ({expect.error!r}); it applied {_effects(effects)}"]
    if expect.effects is not None and _sorted([e.model_dump() for e in expect.effects]) != _effects(effects):
        return [f"effects: expected {_sorted([e.model_dump() for e in expect.effects])}, got {_effects(effects)}"]
    return []


def compare(expect: Expect, decision: Decision) -> list[str]:
    why = "; ".join(f"{c}{' ' + n if n else ''}: {m}" for c, n, m in decision.reasons) or \
        f"allowed by {', '.join(decision.allowed_by)}"
    out = []
    if expect.decision is not None and expect.decision != decision.decision:
        out.append(f"decision: expected {expect.decision}, got {decision.decision} ({why})")
    if expect.codes is not None and expect.codes != decision.codes:
        out.append(f"codes: expected {expect.codes}, got {decision.codes} ({why})")
    rules = list(decision.allowed_by) if decision.allowed else [n for _, n, _ in decision.reasons if n]
    if expect.rules is not None and expect.rules != rules:
        out.append(f"rules: expected {expect.rules}, got {rules} ({why})")
    if expect.effects is not None and _sorted([e.model_dump() for e in expect.effects]) != _effects(decision.effects):
        out.append(f"effects: expected {_sorted([e.model_dump() for e in expect.effects])}, "
                   f"got {_effects(decision.effects)}")
    if expect.repeat is not None and expect.repeat != decision.repeat:
        out.append(f"repeat: expected {expect.repeat}, got {decision.repeat}")
    if expect.error is not None:
        out.append("`error` is for a completion line; this line is a request")
    return out


def _effects(effects: tuple[Any, ...]) -> list[dict[str, Any]]:
    return _sorted([{"state": s, "key": k or None, "before": b, "after": a} for s, k, b, a in effects])


def _sorted(effects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(effects, key=lambda e: (e["state"], e["key"] or ""))


def _compare_verify(expected: Mapping[str, str], results: list[Any]) -> list[str]:
    statuses: dict[str, set[str]] = {}
    for r in results:
        statuses.setdefault(r.property, set()).add(r.status)
    out = []
    for name, want in expected.items():
        got = statuses.get(name)
        if got is None:
            out.append(f"verify: the policy has no property `{name}`")
            continue
        status = "violated" if "violated" in got else "proved" if got == {"proved"} else "unknown"
        if status != want:
            reasons = "; ".join(r.reason or "" for r in results if r.property == name and r.status == status)
            out.append(f"verify `{name}`: expected {want}, got {status}" + (f" ({reasons})" if reasons else ""))
    return out
