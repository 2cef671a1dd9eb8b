"""A state store in Redis, shared by many engine processes on many hosts.

Contract: `atomic(step)` is an optimistic transaction. The step's reads are recorded
(what the engine knows it will read comes in one MGET); the commit is one Lua script
that checks every key read still holds exactly what was read and, only then, applies
all the writes and counts the commit order — Redis runs a script atomically. If
another engine changed a key in between, the step runs again (at most `retries`
times, then `StoreError`). So the read, the decision and the writes of one decision
are linearizable. Decision sequence numbers are reserved in blocks with INCRBY
(unique, not gap-free). Any connection failure or timeout raises `StoreError`: the engine
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
NIL = "(absent)"  # stands for "the key was absent": no stored value (JSON or an int) looks like it

# KEYS: the keys the step read, then one key per write, then the order counter.
# ARGV: the number of read keys, the raw values read (NIL for absent), then per write
# (op, value, number): set with a TTL (0: none), zadd with a score, zrem, incr.
CAS_SCRIPT = """
local n = tonumber(ARGV[1])
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if v == false then v = '(absent)' end
  if v ~= ARGV[i + 1] then return -1 end
end
local a = n + 2
for i = n + 1, #KEYS - 1 do
  local op, value, number = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  a = a + 3
  if op == 'set' then
    if number > 0 then redis.call('SET', KEYS[i], value, 'EX', number) else redis.call('SET', KEYS[i], value) end
  elseif op == 'zadd' then redis.call('ZADD', KEYS[i], number, value)
  elseif op == 'zrem' then redis.call('ZREM', KEYS[i], value)
  elseif op == 'incr' then redis.call('INCR', KEYS[i])
  end
end
return redis.call('INCR', KEYS[#KEYS])
"""


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
        self._reads: dict[str, Any] = {}  # what the running step read: key -> raw value (None: absent)
        self._stepping = False
        self._cas = self.client.register_script(CAS_SCRIPT)
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
                self._reads = {}
                self._stepping = True
                try:
                    result, changes = step(self, *args)
                finally:
                    self._stepping = False
                order = self._commit(changes or Changes())
                if order >= 0:
                    self.last_order = order
                    return result
        except redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
        except (ValueError, TypeError, KeyError) as exc:  # stored data that does not decode
            raise StoreError(f"the Redis store holds data that does not fit the policy: {exc}") from exc
        raise StoreError(f"gave up after {self.retries} conflicting attempts")

    def _commit(self, changes: Changes) -> int:
        """One script call: if every key the step read still holds what it read, apply the
        writes and return the commit order; else -1 (the step runs again)."""
        read_keys = list(self._reads)
        expected = [NIL if v is None else v for v in self._reads.values()]
        write_keys, ops = self._writes(changes)
        keys = read_keys + write_keys + [self.prefix + "order"]
        return int(self._cas(keys=keys, args=[len(read_keys), *expected, *ops]))

    def prefetch(self, entries: list[EntryKey], nonce: tuple[str, str] | None,
                 idempotency: tuple[str, str] | None) -> None:
        """Read, in one round trip, every key the step is about to read."""
        keys = [self._k("e", *e) for e in entries]
        keys += [self._k("n", *nonce)] if nonce else []
        keys += [self._k("i", *idempotency)] if idempotency else []
        keys = [k for k in keys if k not in self._reads]
        if keys and self._stepping:
            self._reads.update(zip(keys, self.client.mget(keys), strict=True))

    def _read(self, key: str) -> Any:
        if key not in self._reads:
            value = self.client.get(key)
            if not self._stepping:
                return value
            self._reads[key] = value
        return self._reads[key]

    def _writes(self, changes: Changes) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        ops: list[Any] = []

        def put(key: str, value: str, ttl: int | None) -> None:
            keys.append(key)
            ops.extend(["set", value, ttl or 0])

        for (name, key), entry in changes.entries.items():
            window = self.windows.get(name)
            put(self._k("e", name, key), json.dumps([entry.value, entry.written]), 2 * window + 60 if window else None)
        for (agent, nonce), at in changes.nonces.items():
            put(self._k("n", agent, nonce), str(at), self.nonce_ttl + 60)
        for (agent, key), (fingerprint, at, decision) in changes.idempotency.items():
            record = decision if isinstance(decision, dict) else decision.snapshot()
            put(self._k("i", agent, key), json.dumps([fingerprint, at, record], ensure_ascii=False),
                self.idempotency_ttl + 60)
        ids = {seq: decision_id for decision_id, seq in changes.ids.items()}
        leases_changed = False
        for seq, p in changes.pending.items():
            body = json.dumps([p.tool, p.args, p.agent, p.time, p.deadline, p.completed], ensure_ascii=False)
            put(self._k("p", seq), body, CALL_TTL)
            if seq in ids:
                put(self._k("id", ids[seq]), str(seq), CALL_TTL)
            if p.deadline is not None:
                keys.append(self.prefix + "leases")
                if p.completed is None:
                    ops.extend(["zadd", str(seq), p.deadline])
                else:
                    ops.extend(["zrem", str(seq), 0])
                leases_changed = True
        if leases_changed:  # readers of the lease set compare this version
            keys.append(self.prefix + "leases_version")
            ops.extend(["incr", "", 0])
        return keys, ops

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
        self._read(self.prefix + "leases_version")  # the commit fails if the set changed since
        return [int(str(m)) for m in self.client.zrangebyscore(self.prefix + "leases", "-inf", now)]

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
