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


class MemoryStore:
    """All state in this process, guarded by one lock."""

    durable = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[EntryKey, Entry] = {}
        self._nonces: dict[tuple[str, str], int] = {}
        self._idempotency: dict[tuple[str, str], Any] = {}
        self._pending: dict[int, Pending] = {}
        self._leases: list[tuple[int, int]] = []  # heap of (deadline, seq)
        self._seq = 0

    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        with self._lock:
            result, changes = step(self, *args)
            if changes is not None:
                self._apply(changes)
            return result

    def _apply(self, changes: Changes) -> None:
        self._entries.update(changes.entries)
        self._nonces.update(changes.nonces)
        self._idempotency.update(changes.idempotency)
        for seq, pending in changes.pending.items():
            if seq not in self._pending and pending.deadline is not None:
                heapq.heappush(self._leases, (pending.deadline, seq))
            self._pending[seq] = pending

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
        return None  # the engine keeps ids in memory when the store is

    def entries(self) -> dict[EntryKey, Entry]:
        with self._lock:
            return {k: Entry(e.value, e.written) for k, e in self._entries.items()}

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        with self._lock:
            self._entries = dict(entries)
