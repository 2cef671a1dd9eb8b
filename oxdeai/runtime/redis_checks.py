"""What a Redis and its URL must be before a store opens on it.

Contract: `check_redis_url` refuses a URL that would fail deep inside the client or be
read in a way nobody meant; `refuse_eviction` refuses a Redis that may evict keys.
Both raise `StoreError` with the fix.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

from oxdeai.runtime.store import StoreError


def check_redis_url(url: str) -> None:
    """Refuse a Redis URL that would fail deep inside the client, or be read in a way
    nobody meant (a db that is not a number, a timeout that is not a positive number)."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        raise StoreError(f"bad store URL `{url}`: {exc}") from exc
    if port == 0:
        raise StoreError(f"bad store URL `{url}`: the port must be 1-65535")
    if parsed.scheme != "unix" and parsed.path not in ("", "/") and not parsed.path.lstrip("/").isdigit():
        raise StoreError(f"bad store URL `{url}`: the database is a number, e.g. redis://127.0.0.1:6379/0")
    for raw in parse_qs(parsed.query).get("timeout", []):
        try:
            timeout = float(raw)
        except ValueError:
            timeout = float("nan")
        if not (0 < timeout < 3600):  # also refuses nan and inf
            raise StoreError(f"bad store URL `{url}`: timeout must be a number of seconds above 0 and below 3600")


def refuse_eviction(client: Any, redis: Any) -> None:
    """A Redis that may evict keys forgets budgets, nonces and idempotency records
    silently (an evicted key reads as absent): only `noeviction` is accepted. The policy
    is read with CONFIG GET, or from INFO where CONFIG is disabled (managed Redis)."""
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except redis.ResponseError:
        policy = client.info("memory").get("maxmemory_policy")
    if policy != "noeviction":
        raise StoreError(f"Redis evicts keys under memory pressure (maxmemory-policy {policy}), which would "
                         "silently forget budgets, nonces and idempotency records: set "
                         "`maxmemory-policy noeviction` for the Redis (or database) oxdeai uses")
