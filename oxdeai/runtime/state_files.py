"""State files: the brief's JSON of every entry, out of a store and into one.

Contract: `export_state(engine)` gives `{state: value}` (keyed states `{state: {key:
value}}`; a windowed entry with its write time as `{"value": V, "written": T}`);
`import_state(engine, data, first_time)` replaces every entry, or raises
StateFileError naming what does not fit the policy — a value of the wrong type, a key
no request can carry, a value or time outside the request domain. The store's clock
never runs backwards over an import. `set_entry` is an operator's write of one entry.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import in_int_domain, is_time
from oxdeai.runtime.entries import stamped, store_clock
from oxdeai.runtime.plans import StatePlan
from oxdeai.runtime.store import CLOCK, Changes, Entry, EntryKey, StateStore


class StateOwner(Protocol):
    """What the state files need of an engine (oxdeai.runtime.engine.Engine has it)."""

    policy: CheckedPolicy
    store: StateStore
    states: dict[str, StatePlan]

    def store_clock(self) -> int: ...


class StateFileError(ValueError):
    """A state file that does not fit the policy."""


def export_state(engine: StateOwner) -> dict[str, Any]:
    """The brief's state-file JSON for every entry the store holds."""
    out: dict[str, Any] = {}
    for (name, key), entry in sorted(engine.store.entries().items()):
        state = engine.states.get(name)
        if state is None:
            continue
        value: Any = entry.value if entry.written is None or state.window is None else \
            {"value": entry.value, "written": entry.written}
        if state.key:
            out.setdefault(name, {})[key] = value
        else:
            out[name] = value
    return out


def import_state(engine: StateOwner, data: Any, first_time: int | None = None) -> None:
    """Load a state file; raises StateFileError naming what does not fit the policy.
    Plain values belong to the window of `first_time` (the first request's time)."""
    if not isinstance(data, dict):
        raise StateFileError("a state file is a JSON object of state names")
    entries: dict[EntryKey, Entry] = {}
    for name, raw in data.items():
        state = engine.states.get(name)
        if state is None:
            raise StateFileError(f"`{name}` is not a state of policy `{engine.policy.name}`")
        if state.key:
            if not isinstance(raw, dict):
                raise StateFileError(f"`{name}` is keyed: give {{\"KEY\": VALUE}}")
            for key, value in raw.items():
                entries[(name, _normal_key(state, key))] = _entry(state, value, first_time)
        else:
            entries[(name, "")] = _entry(state, raw, first_time)
    # the clock never runs backwards, and stays at or after every write time it now holds
    times = [e.written for e in entries.values() if e.written is not None]
    current = engine.store_clock()
    clock = max([current, *times])
    if clock:
        entries[CLOCK] = Entry(clock, clock)
    engine.store.replace_entries(entries)


def set_entry(engine: StateOwner, name: str, key: str, value: Any, at: int) -> None:
    """Write one entry at `at`, or at the store's clock if that is later."""
    if not is_time(at):
        raise StateFileError(f"the write time must be from 0 to 2^53 − 1, not {at!r}")
    if type(value) is int and not in_int_domain(value):
        raise StateFileError(f"{value} lies outside ±(2^53 − 1), the values a decision can show")

    def step(store: StateStore) -> tuple[None, Changes | None]:
        clock = store_clock(store)
        changes = Changes()
        changes.entries[(name, key)] = Entry(value, max(at, clock))
        return None, stamped(changes, clock, max(at, clock), always=True)

    engine.store.atomic(step)


def _normal_key(state: StatePlan, key: str) -> str:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise StateFileError(f"`{state.name}`: the key {key!r} holds a lone surrogate, which no request can carry")
    if len(state.key) == 1:
        return key
    try:
        parts = json.loads(key)
    except ValueError:
        parts = None
    if not isinstance(parts, list) or len(parts) != len(state.key):
        raise StateFileError(f"`{state.name}` has a {len(state.key)}-part key: write it as a JSON list, "
                             f"e.g. {json.dumps(['a'] * len(state.key))}")
    return json.dumps(parts, ensure_ascii=False, separators=(",", ":"))


def _entry(state: StatePlan, raw: Any, first_time: int | None) -> Entry:
    written = first_time
    value = raw
    if isinstance(raw, dict):
        if set(raw) != {"value", "written"} or type(raw["written"]) is not int:
            raise StateFileError(f"`{state.name}`: an entry is a value or {{\"value\": V, \"written\": T}}")
        value, written = raw["value"], raw["written"]
    if type(value) is not type(state.init):
        raise StateFileError(f"`{state.name}` holds {type(state.init).__name__} values, not {value!r}")
    if type(value) is int and not in_int_domain(value):
        raise StateFileError(f"`{state.name}`: {value} lies outside ±(2^53 − 1), the values a decision can show")
    if written is not None and not is_time(written):
        raise StateFileError(f"`{state.name}`: `written` must be a time from 0 to 2^53 − 1")
    return Entry(value, written)
