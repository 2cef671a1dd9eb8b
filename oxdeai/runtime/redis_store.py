"""A state store in Redis, shared by many engine processes on many hosts.

Contract: `atomic(step)` is an optimistic transaction: every key the step reads is
WATCHed before it is read, and the writes go in one MULTI/EXEC; if another engine
changed a watched key in between, EXEC fails and the step is run again (at most
`retries` times, then `StoreError`). So the read, the decision and the writes of
one decision are linearizable. Decision sequence numbers come from INCR (unique,
not gap-free). Any connection failure or timeout raises `StoreError`: the engine
denies with `store_unavailable` and nothing is applied. Nonces, idempotency
records, windowed entries and finished calls expire by Redis TTLs. All keys of a
policy share a prefix, so several policies can share one Redis.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from oxdeai.runtime.store import Changes, Entry, EntryKey, Pending, StoreError

T = TypeVar("T")
CALL_TTL = 7 * 86_400  # how long an allowed call can still be completed


class RedisStore:
    durable = True

    def __init__(self, url: str, policy_name: str, policy_sha256: str, migrate: bool = False,
                 windows: dict[str, int] | None = None, nonce_ttl: int = 86_400, idempotency_ttl: int = 86_400,
                 retries: int = 200) -> None:
        import redis  # imported here: only deployments that use Redis need the package

        self._redis = redis
        parsed = urlparse(url)
        options = parse_qs(parsed.query)
        self.prefix = options.get("prefix", [f"oxdeai:{policy_name}:"])[0]
        timeout = float(options.get("timeout", ["2"])[0])
        self.client = redis.Redis.from_url(url.split("?")[0], socket_timeout=timeout, socket_connect_timeout=timeout,
                                           decode_responses=True)
        self.windows = windows or {}
        self.nonce_ttl = nonce_ttl
        self.idempotency_ttl = idempotency_ttl
        self.retries = retries
        self._pipe: Any = None
        self._cache: dict[str, Any] = {}
        self._seq_next = self._seq_end = 0
        self.last_order: int | None = None  # the commit order of this process's last step
        try:
            stored = self.client.hget(self.prefix + "meta", "policy")
            if stored is None or migrate:
                self.client.hset(self.prefix + "meta", "policy", policy_sha256)
            elif stored != policy_sha256:
                raise StoreError(f"the Redis store under `{self.prefix}` was written by another version of the "
                                 "policy; migrate it with `oxdeai state import --migrate`")
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach Redis at {parsed.hostname}:{parsed.port}: {exc}") from exc

    # ---- keys ---------------------------------------------------------------------

    def _k(self, kind: str, *parts: Any) -> str:
        return self.prefix + kind + ":" + json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))

    # ---- the atomic step ----------------------------------------------------------------

    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        redis = self._redis
        try:
            for _ in range(self.retries):
                with self.client.pipeline(transaction=True) as pipe:
                    self._pipe = pipe
                    self._cache = {}
                    try:
                        result, changes = step(self, *args)
                        pipe.multi()
                        if changes is not None:
                            self._apply(pipe, changes)
                        pipe.incr(self.prefix + "order")  # counted at EXEC: the commit order
                        self.last_order = int(str(pipe.execute()[-1]))
                        return result
                    except redis.WatchError:
                        continue
                    finally:
                        self._pipe = None
                        self._cache = {}
        except redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
        except (ValueError, TypeError, KeyError) as exc:  # stored data that does not decode
            raise StoreError(f"the Redis store holds data that does not fit the policy: {exc}") from exc
        raise StoreError(f"gave up after {self.retries} conflicting attempts")

    def prefetch(self, entries: list[EntryKey], nonce: tuple[str, str] | None,
                 idempotency: tuple[str, str] | None) -> None:
        """WATCH and read, in two round trips, every key the step is about to read."""
        pipe = self._pipe
        if pipe is None:
            return
        keys = [self._k("e", *e) for e in entries]
        keys += [self._k("n", *nonce)] if nonce else []
        keys += [self._k("i", *idempotency)] if idempotency else []
        if keys:
            pipe.watch(*keys)
            self._cache = dict(zip(keys, pipe.mget(keys), strict=True))

    def _read(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        pipe = self._pipe
        if pipe is None:
            return self.client.get(key)
        pipe.watch(key)
        return pipe.get(key)

    def _apply(self, pipe: Any, changes: Changes) -> None:
        for (name, key), entry in changes.entries.items():
            window = self.windows.get(name)
            pipe.set(self._k("e", name, key), json.dumps([entry.value, entry.written]),
                     ex=2 * window + 60 if window else None)
        for (agent, nonce), at in changes.nonces.items():
            pipe.set(self._k("n", agent, nonce), at, ex=self.nonce_ttl + 60)
        for (agent, key), (fingerprint, at, decision) in changes.idempotency.items():
            record = decision if isinstance(decision, dict) else decision.snapshot()
            pipe.set(self._k("i", agent, key), json.dumps([fingerprint, at, record], ensure_ascii=False),
                     ex=self.idempotency_ttl + 60)
        ids = {seq: decision_id for decision_id, seq in changes.ids.items()}
        for seq, p in changes.pending.items():
            body = json.dumps([p.tool, p.args, p.agent, p.time, p.deadline, p.completed], ensure_ascii=False)
            pipe.set(self._k("p", seq), body, ex=CALL_TTL)
            if seq in ids:
                pipe.set(self._k("id", ids[seq]), seq, ex=CALL_TTL)
            if p.deadline is not None and p.completed is None:
                pipe.zadd(self.prefix + "leases", {str(seq): p.deadline})
            else:
                pipe.zrem(self.prefix + "leases", str(seq))

    # ---- reads inside a step ----------------------------------------------------------

    SEQ_BLOCK = 64  # sequence numbers reserved per INCRBY: unique across engines, not gap-free

    def next_seq(self) -> int:
        if self._seq_next >= self._seq_end:
            self._seq_end = int(self.client.incrby(self.prefix + "seq", self.SEQ_BLOCK)) + 1
            self._seq_next = self._seq_end - self.SEQ_BLOCK
        self._seq_next += 1
        return self._seq_next - 1

    def entry(self, key: EntryKey) -> Entry | None:
        raw = self._read(self._k("e", *key))
        if raw is None:
            return None
        value, written = json.loads(raw)
        return Entry(value, written)

    def nonce(self, scope: tuple[str, str]) -> int | None:
        raw = self._read(self._k("n", *scope))
        return None if raw is None else int(raw)

    def idempotency(self, scope: tuple[str, str]) -> Any:
        raw = self._read(self._k("i", *scope))
        return None if raw is None else tuple(json.loads(raw))

    def pending(self, seq: int) -> Pending | None:
        raw = self._read(self._k("p", seq))
        return None if raw is None else Pending(*json.loads(raw))

    def seq_for(self, decision_id: str) -> int | None:
        raw = self._read(self._k("id", decision_id))
        return None if raw is None else int(raw)

    def due_leases(self, now: int) -> list[int]:
        key = self.prefix + "leases"
        if self._pipe is not None:
            self._pipe.watch(key)
        source: Any = self._pipe if self._pipe is not None else self.client
        return [int(str(m)) for m in source.zrangebyscore(key, "-inf", now)]

    # ---- whole-state operations -----------------------------------------------------------

    def entries(self) -> dict[EntryKey, Entry]:
        out: dict[EntryKey, Entry] = {}
        try:
            for key in self.client.scan_iter(match=self.prefix + "e:*", count=1000):
                raw = self.client.get(key)
                if raw is not None:
                    name, entry_key = json.loads(key[len(self.prefix) + 2:])
                    value, written = json.loads(raw)
                    out[(name, entry_key)] = Entry(value, written)
        except self._redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
        return out

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        try:
            old = list(self.client.scan_iter(match=self.prefix + "e:*", count=1000))
            with self.client.pipeline(transaction=True) as pipe:
                if old:
                    pipe.delete(*old)
                for (name, key), entry in entries.items():
                    pipe.set(self._k("e", name, key), json.dumps([entry.value, entry.written]))
                pipe.execute()
        except self._redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
