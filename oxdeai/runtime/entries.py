"""How a step names, reads and writes state entries: the one definition the engine,
the state files and the verifier's replay use.

Contract: `state_key(state, ctx)` is the text key of `state`'s entry for a request (""
for an unkeyed state; one key part as its text, several as compact JSON). `entry_value`
is what a step at `now` reads from a stored entry: the initial value when there is none
or when its window has passed since it was written. `effect_writes` computes a call's
writes, (state, key) -> (before, after), every right-hand side reading the state before
the call; `out_of_range` lists the int writes outside the request domain.
`store_clock` is the time no step may be decided before, and `stamped` moves it
forward with every step that writes.
"""

from __future__ import annotations

import json
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.types import in_int_domain
from oxdeai.runtime.interpreter import Ctx
from oxdeai.runtime.plans import EffectPlan, StatePlan
from oxdeai.runtime.store import CLOCK, Changes, Entry, EntryKey, StateStore, StoreError


def state_key(state: StatePlan, ctx: Ctx) -> str:
    if not state.key:
        return ""
    parts = [k(ctx) for k in state.key]
    if len(parts) == 1:
        return str(parts[0])
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def entry_value(state: StatePlan, entry: Entry | None, now: int) -> Any:
    """The value a step at `now` reads; a value of the wrong type is a StoreError (fail closed)."""
    if entry is None:
        return state.init
    if type(entry.value) is not type(state.init):
        raise StoreError(f"state `{state.name}` holds {entry.value!r}, which does not fit its type")
    if state.window is not None and entry.written is not None and now // state.window > entry.written // state.window:
        return state.init
    return entry.value


def effect_writes(effects: tuple[EffectPlan, ...], states: dict[str, StatePlan],
                  ctx: Ctx) -> dict[EntryKey, tuple[Any, Any]]:
    """(state, key) -> (before, after) for the effects whose `when` holds, in declaration order."""
    deltas: dict[EntryKey, list[tuple[A.AssignOp, Any]]] = {}
    for effect in effects:
        if effect.when is not None and not effect.when(ctx):
            continue
        for assign in effect.assigns:
            key = state_key(states[assign.target], ctx)
            deltas.setdefault((assign.target, key), []).append((assign.op, assign.value(ctx)))
    out: dict[EntryKey, tuple[Any, Any]] = {}
    for (name, key), ops in deltas.items():
        before = ctx.read_state(name)  # the same request computes the same key
        after = before
        for op, value in ops:
            if op is A.AssignOp.SET:
                after = value
            elif op is A.AssignOp.ADD:
                after = after + value
            else:
                after = after - value
        out[(name, key)] = (before, after)
    return out


def out_of_range(writes: dict[EntryKey, tuple[Any, Any]]) -> list[tuple[str, int]]:
    """The int writes outside ±(2^53 − 1), the request domain (sorted: reasons are stable)."""
    return sorted((name, after) for (name, _), (_, after) in writes.items()
                  if type(after) is int and not in_int_domain(after))


def store_clock(store: StateStore) -> int:
    """The store's clock (0 for a new store); a clock that is not a time is a StoreError."""
    entry = store.entry(CLOCK)
    if entry is None:
        return 0
    if type(entry.value) is not int or entry.value < 0:
        raise StoreError(f"the store's clock holds {entry.value!r}, which is not a time")
    return entry.value


def stamped(changes: Changes, clock: int, now: int, always: bool = False) -> Changes | None:
    """The step's changes, with the store's clock moved to `now` when the step writes
    (None: nothing to write)."""
    if not (always or changes.entries or changes.pending):
        return None
    if now > clock:
        changes.entries[CLOCK] = Entry(now, now)
    return changes


def no_state(name: str) -> Any:
    """The state reader of a policy without state: the checker lets no expression call it."""
    raise AssertionError(f"the checker lets no expression read state `{name}` in a policy without state")
