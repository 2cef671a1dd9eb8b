"""The results of idempotent calls, kept beside the store for their window.

Contract: `start(id)` marks an idempotent call running; `finish(id, value, error,
until, now)` keeps its result (or exception) until decision time `until` and forgets
results whose time has passed `now`;
`get(id)` is the kept entry or None. In this process only: a repeat of a call made
by another process finds nothing here and answers "already done". At most `limit`
results are kept; past it the oldest go first.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kept:
    running: bool
    value: Any = None
    error: BaseException | None = None
    until: int = 0  # the decision time after which a repeat can no longer come


class Results:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._kept: collections.OrderedDict[str, Kept] = collections.OrderedDict()
        self._lock = threading.Lock()

    def start(self, decision_id: str) -> None:
        with self._lock:
            self._kept[decision_id] = Kept(running=True)
            self._trim()

    def finish(self, decision_id: str, value: Any, error: BaseException | None, until: int, now: int) -> None:
        with self._lock:
            self._kept[decision_id] = Kept(False, value, error, until)  # keeps its place: the order calls started
            while self._kept:  # the oldest first; a running call holds its place
                oldest = next(iter(self._kept.values()))
                if oldest.running or oldest.until >= now:
                    break
                self._kept.popitem(last=False)
            self._trim()

    def get(self, decision_id: str) -> Kept | None:
        with self._lock:
            return self._kept.get(decision_id)

    def _trim(self) -> None:
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)
