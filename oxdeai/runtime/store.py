"""State stores: where entries, nonces, idempotency records and pending calls live.

Contract: the engine runs each decision and completion as one call to
`store.atomic(step)`: `step` reads through the store's methods and returns the
writes it wants (a `Changes`), which the store applies all at once before any
other step runs. A store may retry `step` (it must be pure); durable and
distributed stores implement the same interface. `MemoryStore` is the
in-process default: a lock around plain dicts.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

EntryKey = tuple[str, str]  # (state name, key text); key text "" for unkeyed states

# The store's clock, kept as an entry: the latest time any step that wrote was decided at.
# The engine reads and writes every step at `max(its time, the clock)`, so all entries a
# step reads were written at or before one time (docs/engine.md, "One time per store").
# The name cannot be a state's; state files and `state show` leave it out.
CLOCK: EntryKey = ("#clock", "")


@dataclass(slots=True)
class Entry:
    value: Any
    written: int | None  # time of the last write; None: "the window of the first request"


@dataclass(slots=True)
class Pending:
    """An allowed call that may still be completed."""

    tool: str
    args: dict[str, Any]
    agent: dict[str, Any]
    time: int
    deadline: int | None  # lease expiry, if a concurrent limit with a lease applies
    completed: str | None = None  # the outcome once completed


class Changes:
    """The writes of one atomic step."""

    __slots__ = ("entries", "nonces", "idempotency", "pending", "ids")

    def __init__(self) -> None:
        self.entries: dict[EntryKey, Entry] = {}
        self.nonces: dict[tuple[str, str], int] = {}
        self.idempotency: dict[tuple[str, str], Any] = {}
        self.pending: dict[int, Pending] = {}
        self.ids: dict[str, int] = {}  # decision id -> sequence number, for stores other processes share


class StoreError(Exception):
    """The store cannot be reached or answered with data that does not fit: the engine denies."""


class StateStore(Protocol):
    durable: bool  # shared beyond this process: decision ids are recorded in the store
    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        """Run `step(self, *args)` and apply the Changes it returns, as one atomic step."""
    def next_seq(self) -> int: ...
    def entry(self, key: EntryKey) -> Entry | None: ...
    def nonce(self, scope: tuple[str, str]) -> int | None: ...
    def idempotency(self, scope: tuple[str, str]) -> Any: ...
    def pending(self, seq: int) -> Pending | None: ...
    def due_leases(self, now: int) -> list[int]: ...
    def entries(self) -> dict[EntryKey, Entry]: ...
    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None: ...
    def seq_for(self, decision_id: str) -> int | None: ...


CALL_TTL = 7 * 86_400  # how long a finished call (or one with nothing to do on completion) is kept


@dataclass(frozen=True, slots=True)
class Horizons:
    """How long each kind of record matters, from the policy: the stores forget a record
    once the store's clock is past it, so a long-running store stays bounded."""

    windows: dict[str, int]  # windowed state -> window (an entry two windows old reads as initial)
    nonce_ttl: int = 86_400
    idempotency_ttl: int = 86_400
    completes: frozenset[str] = frozenset()  # tools whose completion does something (effects, lease)

    @staticmethod
    def of(policy: Any) -> Horizons:
        return Horizons({s.name: s.window.seconds for s in policy.states.values() if s.window is not None},
                        policy.nonce_window or 86_400,
                        max((d.window.seconds for d in policy.idempotent), default=86_400),
                        frozenset(t for t in policy.tools if _completes(policy, t)))


def _completes(policy: Any, tool: str) -> bool:
    from oxdeai.dsl.ast import matches_any  # the store needs only this one fact about patterns

    return any(e.on_complete and matches_any(e.patterns, tool) for e in policy.effects) or \
        any(g.lease is not None and matches_any(g.patterns, tool) for g in policy.gates)


class MemoryStore:
    """All state in this process, guarded by one lock. Every PURGE_EVERY commits it forgets,
    as the durable stores do, what no later step can read (measured against the store's
    clock): nonces and idempotency records past their window, finished calls (and calls
    with nothing to do on completion) past CALL_TTL, windowed entries two windows old."""

    durable = False
    PURGE_EVERY = 1_024

    def __init__(self, horizons: Horizons | None = None) -> None:
        self._lock = threading.Lock()
        self._horizons = horizons or Horizons({})
        self._entries: dict[EntryKey, Entry] = {}
        self._nonces: dict[tuple[str, str], int] = {}
        self._idempotency: dict[tuple[str, str], Any] = {}
        self._pending: dict[int, Pending] = {}
        self._ids: dict[str, int] = {}  # decision id -> number, for allowed calls
        self._seq_of_id: dict[int, str] = {}
        self._leases: list[tuple[int, int]] = []  # heap of (deadline, seq)
        self._seq = 0
        self._commits = 0

    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        with self._lock:
            result, changes = step(self, *args)
            if changes is not None:
                self._apply(changes)
                self._commits += 1
                if self._commits % self.PURGE_EVERY == 0:
                    self._purge()
            return result

    def _apply(self, changes: Changes) -> None:
        self._entries.update(changes.entries)
        self._nonces.update(changes.nonces)
        self._idempotency.update(changes.idempotency)
        for seq, pending in changes.pending.items():
            if seq not in self._pending and pending.deadline is not None:
                heapq.heappush(self._leases, (pending.deadline, seq))
            self._pending[seq] = pending
        for decision_id, seq in changes.ids.items():
            self.remember_id(decision_id, seq)

    def remember_id(self, decision_id: str, seq: int) -> None:
        """An allowed call's id, once the host has seen it (ids are computed lazily)."""
        if seq in self._pending:
            self._ids[decision_id] = seq
            self._seq_of_id[seq] = decision_id

    def _purge(self) -> None:
        clock = self._entries.get(CLOCK)
        now = clock.value if clock is not None and type(clock.value) is int else 0
        h = self._horizons
        self._nonces = {k: t for k, t in self._nonces.items() if t >= now - h.nonce_ttl}
        self._idempotency = {k: r for k, r in self._idempotency.items() if r[1] >= now - h.idempotency_ttl}
        gone = [seq for seq, p in self._pending.items() if p.time < now - CALL_TTL
                and (p.completed is not None or p.tool not in h.completes)]
        for seq in gone:
            del self._pending[seq]
            decision_id = self._seq_of_id.pop(seq, None)
            if decision_id is not None:
                self._ids.pop(decision_id, None)
        self._entries = {k: e for k, e in self._entries.items() if k[0] not in h.windows
                         or e.written is None or e.written >= now - 2 * h.windows[k[0]]}

    def size(self) -> int:
        """How many records the store holds (for measuring)."""
        return len(self._entries) + len(self._nonces) + len(self._idempotency) + len(self._pending) + \
            len(self._ids) + len(self._leases)

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def entry(self, key: EntryKey) -> Entry | None:
        return self._entries.get(key)

    def nonce(self, scope: tuple[str, str]) -> int | None:
        return self._nonces.get(scope)

    def idempotency(self, scope: tuple[str, str]) -> Any:
        return self._idempotency.get(scope)

    def pending(self, seq: int) -> Pending | None:
        return self._pending.get(seq)

    def due_leases(self, now: int) -> list[int]:
        due = []
        while self._leases and self._leases[0][0] <= now:
            _, seq = heapq.heappop(self._leases)
            due.append(seq)
        return due

    def seq_for(self, decision_id: str) -> int | None:
        return self._ids.get(decision_id)

    def entries(self) -> dict[EntryKey, Entry]:
        with self._lock:
            return {k: Entry(e.value, e.written) for k, e in self._entries.items()}

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        with self._lock:
            self._entries = dict(entries)
