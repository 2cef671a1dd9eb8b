"""Rolling a store over from one version of its policy to the next, state by state.

Contract: a state's *meaning* is its type, its key, its window and — for a limit's
state — what the limit counts (`sum` of which amount, or `concurrent`), never its
bound: `state_signature`. `plan_rollout(old, new)` keeps the entries of every state
whose meaning is unchanged (`kept`: raising a limit keeps the day's spend, and the
new bound applies to it), starts afresh every state that is new or whose meaning
changed (`fresh`), and forgets the states the new version no longer has
(`removed`). A tool whose effects changed (`changed_tools`: what a call or its
completion writes) must not have its calls in flight completed by the new version —
a refund of the new kind for a charge of the old kind — so `roll_over` first
completes them `"expired"` under the old version (the verifier models `expired` as
a completion any call may get). `carried_violations` are the new version's
invariants that entries carried over would break: a rollout with any is refused
before anything changes. No value is ever read under a meaning it was not written
with. docs/state.md, "Rolling out a new version".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.formatter import format_decl, format_expr, format_type
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import EXPIRED
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.entries import stamped, store_clock
from oxdeai.runtime.interpreter import Ctx, eval_expr
from oxdeai.runtime.models import canonical_json
from oxdeai.runtime.store import CLOCK, Changes, Entry, EntryKey, Horizons, MemoryStore, StateStore


def state_signature(policy: CheckedPolicy, name: str) -> str:
    state = policy.states[name]
    meaning: dict[str, Any] = {"type": format_type(state.type), "key": [format_expr(k) for k in state.key],
                               "window": state.window.seconds if state.window is not None else None}
    gate = next((g for g in policy.gates if g.name == name), None)
    if gate is not None:
        meaning["limit"] = {"amount": format_expr(gate.amount), "concurrent": gate.concurrent}
    return canonical_json(meaning).decode()


def tool_effects(policy: CheckedPolicy, tool: str) -> str:
    """What a call to `tool` and its completion write, and what those states mean."""
    part = policy.for_tool(tool)
    effects = sorted(format_decl(e) for e in (*part.effects, *part.on_complete))
    gates = sorted(f"{g.name}: {format_expr(g.amount)}" for g in part.gates)
    touched = sorted(part.writes | part.completion_writes | {g.name for g in part.gates})
    return canonical_json({"effects": effects, "gates": gates,
                           "states": {n: state_signature(policy, n) for n in touched}}).decode()


@dataclass
class RolloutPlan:
    kept: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed_tools: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "fresh": self.fresh, "removed": self.removed, "changed_tools": self.changed_tools}


def plan_rollout(old: CheckedPolicy, new: CheckedPolicy) -> RolloutPlan:
    plan = RolloutPlan()
    for name in new.states:
        same = name in old.states and state_signature(old, name) == state_signature(new, name)
        (plan.kept if same else plan.fresh).append(name)
    plan.removed = [name for name in old.states if name not in new.states]
    plan.changed_tools = [t for t in old.tools if t not in new.tools or tool_effects(old, t) != tool_effects(new, t)]
    return plan


def broken_at(engine: Engine, inv: A.InvariantDecl) -> str | None:
    """The first key (text; "" unkeyed) of the store's entries at which `inv` is false,
    read at the store's clock as the next step would read it; None when it holds on all."""
    entries = engine.store.entries()
    now = entries[CLOCK].value if CLOCK in entries else 0
    names = sorted(A.bare_names(inv.expr) & engine.policy.states.keys())
    for key in sorted({key for (name, key) in entries if name in names}) or [""]:
        values = {n: engine.read_entry(n, key, now) for n in names}
        if not eval_expr(inv.expr, Ctx({}, {}, now, "", values.__getitem__, engine.policy.consts)):
            return key
    return None


def carried_violations(probe: Engine) -> list[str]:
    """`invariant NAME at key K` for each invariant of the new version that the entries
    carried over would break. `probe` is an engine of the new version over a scratch
    store holding exactly the entries that would carry over."""
    broken = []
    for inv in probe.policy.invariants:
        key = broken_at(probe, inv)
        if key is not None:
            broken.append(f"invariant `{inv.name}` at key {key!r}" if key else f"invariant `{inv.name}`")
    return broken


def expire_calls_in_flight(old_engine: Engine, tools: set[str]) -> int:
    """Complete every open call to one of `tools` as `"expired"`, under the old version,
    in one step at the store's clock."""
    seqs = old_engine.store.open_calls() if tools else []
    if not seqs:
        return 0

    def step(store: Any) -> tuple[int, Changes | None]:
        changes, clock, count = Changes(), store_clock(store), 0
        for seq in seqs:
            pending = store.pending(seq)
            if pending is not None and pending.completed is None and pending.tool in tools:
                old_engine._complete_one(store, seq, pending, EXPIRED, clock, changes)
                count += 1
        return count, stamped(changes, clock, clock, always=True)

    return int(old_engine.store.atomic(step))


def keep_entries(plan: RolloutPlan, entries: dict[EntryKey, Entry]) -> dict[EntryKey, Entry]:
    """The entries that carry over: the kept states' and the store's own (its clock)."""
    dropped = set(plan.fresh) | set(plan.removed)
    return {k: e for k, e in entries.items() if k[0] not in dropped}


class RolloutRefused(Exception):
    """The new version cannot take over this store; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def roll_over(old_engine: Engine, new: CheckedPolicy,
              reopen: Callable[[CheckedPolicy], StateStore]) -> tuple[Engine, RolloutPlan]:
    """The engine of the new version over the same store, with `plan`'s states carried
    over. `reopen(new)` gives the store bound to the new version (the same object for a
    memory store). Raises `RolloutRefused` before changing anything when entries carried
    over would break an invariant of the new version. The caller makes sure no decision
    of the old version runs meanwhile."""
    plan = plan_rollout(old_engine.policy, new)
    probe = Engine(new, MemoryStore(Horizons.of(new)))
    probe.store.replace_entries(keep_entries(plan, old_engine.store.entries()))
    broken = carried_violations(probe)
    if broken:
        raise RolloutRefused([f"the entries carried over would break {b}" for b in broken])
    expire_calls_in_flight(old_engine, set(plan.changed_tools))
    store = reopen(new)
    store.replace_entries(keep_entries(plan, store.entries()))
    return Engine(new, store=store), plan
