"""Single use: which authorization ids an executor has already accepted.

Contract: `first_use(jti, expires, now)` is True exactly once per `jti` across every
process sharing the store, and atomically so (two executors racing on one token: one
wins). A record is kept until `expires` (the token's `exp`, plus the verification
leeway), after which the token is refused as expired anyway. Stores by URL, as the
state stores: `memory://` (one process), `sqlite:///PATH`, `redis://HOST:PORT/DB`.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Protocol


class ReplayStore(Protocol):
    def first_use(self, jti: str, expires: int, now: int) -> bool: ...


class MemoryReplay:
    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def first_use(self, jti: str, expires: int, now: int) -> bool:
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: e for k, e in self._seen.items() if e >= now}
            if jti in self._seen and self._seen[jti] >= now:
                return False
            self._seen[jti] = expires
            return True


class SQLiteReplay:
    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS used (jti TEXT PRIMARY KEY, expires INTEGER NOT NULL)")
        self._lock = threading.Lock()

    def first_use(self, jti: str, expires: int, now: int) -> bool:
        with self._lock:
            self._db.execute("DELETE FROM used WHERE expires < ?", (now,))
            return self._db.execute("INSERT OR IGNORE INTO used VALUES (?, ?)", (jti, expires)).rowcount == 1


class RedisReplay:
    def __init__(self, url: str, prefix: str = "oxdeai:jti:") -> None:
        import redis

        self._client: Any = redis.Redis.from_url(url, socket_timeout=2.0)
        self._prefix = prefix

    def first_use(self, jti: str, expires: int, now: int) -> bool:
        # kept for as long as the executor's clock says the token lives (Redis's own clock may differ)
        return bool(self._client.set(self._prefix + jti, b"1", nx=True, ex=max(expires - now, 1)))


def open_replay(url: str) -> ReplayStore:
    if url in ("memory://", "memory"):
        return MemoryReplay()
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        return SQLiteReplay(url[len("sqlite:///"):])
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisReplay(url)
    raise ValueError(f"unknown replay store URL `{url}`: use memory://, sqlite:///PATH or redis://HOST:PORT/DB")
