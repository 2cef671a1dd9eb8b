"""Opening a store from its URL: the one place that knows every store module.

Contract: `open_store(url, policy)` returns a fresh store bound to `policy`, or raises
StoreError naming what is wrong with the URL; the Redis module is imported only for a
Redis URL (its package is an optional extra).
"""

from __future__ import annotations

from typing import Any

from oxdeai.runtime.sqlite_store import SQLiteStore
from oxdeai.runtime.store import Horizons, MemoryStore, StateStore, StoreError


def open_store(url: str, policy: Any, migrate: bool = False) -> StateStore:
    """A store for `policy` from its URL: `memory://`, `sqlite:///path/state.db` (a relative
    path; `sqlite:////abs/path.db` for an absolute one), or
    `redis://[:password@]host:port/db[?prefix=...&timeout=S]` (`rediss://` for TLS)."""
    horizons = Horizons.of(policy)
    if url in ("memory://", "memory:", "memory"):
        return MemoryStore(horizons)
    if url.startswith("sqlite:///"):
        if url[len("sqlite:///"):] in ("", ":memory:") or url.endswith("/"):
            raise StoreError(f"bad store URL `{url}`: give the database file, e.g. sqlite:///state.db")
        return SQLiteStore(url[len("sqlite:///"):], policy.sha256, migrate, 5.0, horizons.windows,
                           horizons.nonce_ttl, horizons.idempotency_ttl, horizons.completes, policy.name)
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from oxdeai.runtime.redis_store import RedisStore, check_redis_url
        except ImportError as exc:  # the optional extra is not installed
            raise StoreError(f"the Redis store needs the `redis` package: pip install 'oxdeai[redis]' ({exc})") \
                from exc
        check_redis_url(url)
        return RedisStore(url, policy.name, policy.sha256, migrate, horizons.windows,
                          horizons.nonce_ttl, horizons.idempotency_ttl)
    raise StoreError(f"unknown store URL `{url}`: use memory://, sqlite:///PATH or redis://HOST:PORT/DB")
