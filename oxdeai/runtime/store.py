"""State stores: where entries, nonces, idempotency records and pending calls live.

Contract: the engine runs each decision and completion as one call to
`store.atomic(step)`: `step` reads through the store's methods and returns the
writes it wants (a `Changes`), which the store applies all at once before any
other step runs. A store may retry `step` (it must be pure); durable and
distributed stores implement the same interface. `MemoryStore` is the
in-process default: a lock around plain dicts.
"""

from __future__ import annotations

import collections
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


def mismatch(store: str, stored_sha: str, stored_name: str | None, name: str) -> str:
    """Why a store written by another policy is refused, and what to do: another policy
    altogether is a wrong store; another version of this one is rolled over."""
    if stored_name and name and stored_name != name:
        return (f"{store} belongs to another policy, `{stored_name}` (this is `{name}`): give this policy a store of "
                "its own")
    return (f"{store} was written by another version of this policy (sha256 {stored_sha[:12]}…): roll it over with "
            "`oxdeai state rollout --from OLD.oxp --policy NEW.oxp` (docs/state.md)")


def superseded(store: str, bound: str | None) -> str:
    """Why a step is refused when the store was rolled over under a running engine."""
    now = f"another version (sha256 {bound[:12]}…)" if bound else "no version"
    return (f"{store} now belongs to {now}: another process rolled it over while this engine ran the old "
            "one, so it decides nothing more; restart it (or reload it) with the new policy file")


class StateStore(Protocol):
    durable: bool  # shared beyond this process: decision ids are recorded in the store
    last_order: int | None  # the commit order of the last step, where sequence numbers are not it; else None
    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        """Run `step(self, *args)` and apply the Changes it returns, as one atomic step."""
    def next_seq(self) -> int: ...
    def entry(self, key: EntryKey) -> Entry | None: ...
    def nonce(self, scope: tuple[str, str]) -> int | None: ...
    def idempotency(self, scope: tuple[str, str]) -> Any: ...
    def pending(self, seq: int) -> Pending | None: ...
    def due_leases(self, now: int) -> list[int]: ...
    def entries(self) -> dict[EntryKey, Entry]: ...
    def open_calls(self) -> list[int]: ...  # allowed calls not yet completed (outside a step: a snapshot)
    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None: ...
    def seq_for(self, decision_id: str) -> int | None: ...
    def remember_id(self, decision_id: str, seq: int) -> None:
        """An allowed call's id, computed after its step: a store that did not record it in
        the step (`durable` False) keeps it with the call; a durable store does nothing."""


# how long an allowed call can be completed, and a finished call (or one with nothing to do
# on completion) is kept, by every store
CALL_TTL = 7 * 86_400


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
                        frozenset(t for t in policy.tools if policy.for_tool(t).completes))


def _drop_older(records: collections.OrderedDict[Any, Any], time_of: Callable[[Any], int], horizon: int) -> None:
    """Delete the records written before `horizon` from an oldest-first OrderedDict."""
    while records:
        key = next(iter(records))
        if time_of(records[key]) >= horizon:
            break
        del records[key]


class MemoryStore:
    """All state in this process, guarded by one lock. Every PURGE_EVERY commits it forgets,
    as the durable stores do, what no later step can read (measured against the store's
    clock): nonces and idempotency records past their window, finished calls (and calls
    with nothing to do on completion) past CALL_TTL, windowed entries two windows old."""

    durable = False
    last_order: int | None = None
    PURGE_EVERY = 1_024

    def __init__(self, horizons: Horizons | None = None) -> None:
        self._lock = threading.Lock()
        self._horizons = horizons or Horizons({})
        self._entries: dict[EntryKey, Entry] = {}
        self._nonces: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._idempotency: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
        self._pending: dict[int, Pending] = {}
        self._ids: dict[str, int] = {}  # decision id -> number, for allowed calls
        self._seq_of_id: dict[int, str] = {}
        # oldest first: every step is decided at or after the store's clock, so records are
        # written in time order and a purge stops at the first one still young
        self._calls: collections.deque[tuple[int, int]] = collections.deque()  # (call time, seq)
        self._overdue: set[int] = set()  # old calls still owing a completion
        self._windowed: collections.OrderedDict[EntryKey, int] = collections.OrderedDict()  # entry -> write time
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
        windows = self._horizons.windows
        for key, entry in changes.entries.items():
            if key[0] in windows and entry.written is not None:
                self._windowed[key] = entry.written
                self._windowed.move_to_end(key)  # written last
        for scope, at in changes.nonces.items():
            self._nonces[scope] = at
            self._nonces.move_to_end(scope)
        for scope, record in changes.idempotency.items():
            self._idempotency[scope] = record
            self._idempotency.move_to_end(scope)
        for seq, pending in changes.pending.items():
            if seq not in self._pending:
                self._calls.append((pending.time, seq))
                if pending.deadline is not None:
                    heapq.heappush(self._leases, (pending.deadline, seq))
            elif seq in self._overdue and pending.completed is not None:
                self._overdue.discard(seq)
                self._calls.appendleft((pending.time, seq))  # old already: the next purge takes it
            self._pending[seq] = pending
        for decision_id, seq in changes.ids.items():
            self.remember_id(decision_id, seq)

    def remember_id(self, decision_id: str, seq: int) -> None:
        """An allowed call's id, once the host has seen it (ids are computed lazily)."""
        if seq in self._pending:
            self._ids[decision_id] = seq
            self._seq_of_id[seq] = decision_id

    def _purge(self) -> None:
        """Oldest records first, stopping at the first one still young: the cost is what
        is forgotten, not what is kept."""
        clock = self._entries.get(CLOCK)
        now = clock.value if clock is not None and type(clock.value) is int else 0
        h = self._horizons
        _drop_older(self._nonces, lambda t: t, now - h.nonce_ttl)
        _drop_older(self._idempotency, lambda r: r[1], now - h.idempotency_ttl)
        while self._calls and self._calls[0][0] < now - CALL_TTL:
            _, seq = self._calls.popleft()
            p = self._pending.get(seq)
            if p is None:
                continue
            if p.completed is None and p.tool in h.completes:
                self._overdue.add(seq)  # still owes its completion: kept until it comes
                continue
            del self._pending[seq]
            decision_id = self._seq_of_id.pop(seq, None)
            if decision_id is not None:
                self._ids.pop(decision_id, None)
        while self._windowed:
            key = next(iter(self._windowed))
            if self._windowed[key] >= now - 2 * h.windows[key[0]]:
                break
            del self._windowed[key]
            self._entries.pop(key, None)

    def _index_windowed(self) -> None:
        self._windowed = collections.OrderedDict(
            (k, e.written) for k, e in sorted(self._entries.items(), key=lambda ke: ke[1].written or 0)
            if k[0] in self._horizons.windows and e.written is not None)

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

    def open_calls(self) -> list[int]:
        with self._lock:
            return sorted(seq for seq, p in self._pending.items() if p.completed is None)

    def set_horizons(self, horizons: Horizons) -> None:
        """A new version of the policy: how long each record matters from now on."""
        with self._lock:
            self._horizons = horizons
            self._index_windowed()

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        with self._lock:
            self._entries = dict(entries)
            self._index_windowed()
