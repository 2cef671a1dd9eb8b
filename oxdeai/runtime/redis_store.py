"""A state store in Redis, shared by many engine processes on many hosts.

Contract: `atomic(step)` is an optimistic transaction validated by Redis. The step
reads from this process's cache of what Redis last held (a key never seen is taken
to be absent); the commit is one Lua script that checks every key the step read
still holds exactly that, and that the leases due at the step's time are exactly
those the step expired, and only then applies all the writes and counts the commit
order — Redis runs a script atomically. If anything differs, the script writes
nothing and returns what Redis holds; the cache takes it and the step runs again
(at most `retries` times, then `StoreError`). So a decision costs one round trip
when the cache is right, and the read, the decision and the writes of one decision
are linearizable whether it is or not: the cache only ever saves reads, it never
decides. Decision sequence numbers are reserved in blocks with INCRBY (unique, not
gap-free). Any connection failure or timeout raises `StoreError`: the engine denies
with `store_unavailable` and nothing is applied. Nonces, idempotency records,
windowed entries and finished calls expire by Redis TTLs. All keys of a policy
share a prefix, so several policies can share one Redis.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time as wallclock
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from oxdeai.runtime.redis_checks import check_redis_url, refuse_eviction
from oxdeai.runtime.redis_scripts import CAS_SCRIPT, NIL, RESERVE_SCRIPT
from oxdeai.runtime.store import CALL_TTL, Changes, Entry, EntryKey, Pending, StoreError, mismatch, superseded

T = TypeVar("T")
_json_string: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# Redis expires keys by its own clock, decisions run on the host's: a key lives its window
# plus a day, so decisions agree with the other stores while host time keeps within a day
# of Redis's clock (docs/state.md, "Expiry and sizing").
TTL_MARGIN = 86_400
CACHE_LIMIT = 50_000  # keys remembered per process; past it the cache starts again empty
__all__ = ["RedisStore", "check_redis_url"]


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
        self.policy_sha256 = policy_sha256
        timeout = self.timeout = float(options.get("timeout", ["2"])[0])
        self._offset_us: int | None = None  # Redis's clock minus ours, in microseconds
        self.client = redis.Redis.from_url(url.split("?")[0], socket_timeout=timeout, socket_connect_timeout=timeout,
                                           decode_responses=True)
        self.windows = windows or {}
        self.nonce_ttl = nonce_ttl
        self.idempotency_ttl = idempotency_ttl
        self.retries = retries
        self._cache: dict[str, str | None] = {}  # key -> raw value Redis last held (None: absent)
        self._leases: dict[str, int] = {}  # lease set as last known: seq -> deadline
        self._first_deadline: int | None = None  # min of _leases, or None: not known
        self._reads: dict[str, str | None] = {}  # what the running step read
        self._due_at: int | None = None  # the time the running step asked for due leases at
        self._due: list[str] = []  # and what it was told
        self._stepping = False
        self._entry_keys: dict[EntryKey, str] = {}  # (state, key) -> Redis key, memoized
        self._cas_sha = hashlib.sha1(CAS_SCRIPT.encode()).hexdigest()
        self._conn: Any = None  # one connection of our own for the commit script
        self._lock = threading.Lock()  # one step at a time per store object
        self._seq_next = self._seq_end = 0
        self._highest = 0  # the highest decision number this process has reserved
        self.last_order: int | None = None  # the commit order of this process's last step
        try:
            refuse_eviction(self.client, redis)
            stored = self.client.hget(self.prefix + "meta", "policy")
            if stored is None or migrate:
                self.client.hset(self.prefix + "meta", mapping={"policy": policy_sha256, "name": policy_name})
            elif stored != policy_sha256:
                named = self.client.hget(self.prefix + "meta", "name")
                raise StoreError(mismatch(f"the Redis store under `{self.prefix}`", str(stored),
                                          str(named) if named is not None else None, policy_name))
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach Redis at {parsed.hostname}:{parsed.port}: {exc}") from exc

    # ---- keys ---------------------------------------------------------------------

    def record_key(self, kind: str, *parts: str | int) -> str:
        """The Redis key of one record, `prefix kind:["part",...]`: the parts as a compact JSON
        list (ints as numbers). Kinds: `e` entry, `n` nonce, `i` idempotency, `p` pending call,
        `id` decision id -> number."""
        text = ",".join(_json_string(p) if isinstance(p, str) else str(p) for p in parts)
        return f"{self.prefix}{kind}:[{text}]"

    def _entry_key(self, key: EntryKey) -> str:
        text = self._entry_keys.get(key)
        if text is None:
            if len(self._entry_keys) > CACHE_LIMIT:
                self._entry_keys.clear()
            text = self._entry_keys[key] = self.record_key("e", *key)
        return text

    # ---- the atomic step ----------------------------------------------------------------

    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        with self._lock:
            return self._atomic(step, *args)

    def _atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        redis = self._redis
        refreshed = False
        try:
            for _ in range(self.retries):
                mark = (self._seq_next, self._seq_end)  # the block this try starts in
                self._reads = {}
                self._due_at = None
                self._stepping = True
                try:
                    result, changes = step(self, *args)
                except (StoreError, ValueError, TypeError, KeyError):
                    if refreshed:
                        raise
                    self._refresh()  # a cached value may be out of date: read them all afresh, once
                    refreshed = True
                    continue
                finally:
                    self._stepping = False
                if self._commit(changes or Changes()):
                    return result
                if self._seq_end != 0:  # a try that did not commit used no number: ids match every store's
                    self._seq_next = mark[0] if mark[1] == self._seq_end else self._seq_end - self.SEQ_BLOCK
        except redis.RedisError as exc:
            self._forget()
            raise StoreError(f"Redis is unavailable: {exc}") from exc
        except (ValueError, TypeError, KeyError) as exc:  # stored data that does not decode
            self._forget()
            raise StoreError(f"the Redis store holds data that does not fit the policy: {exc}") from exc
        raise StoreError(f"gave up after {self.retries} conflicting attempts")

    def _commit(self, changes: Changes) -> bool:
        """One script call. If every key the step read still holds what it read (and the
        due leases are those it saw), apply the writes, note the commit order and return
        True; else take what Redis holds into the cache and return False (run again)."""
        read_keys = list(self._reads)
        expected = [NIL if v is None else v for v in self._reads.values()]
        due = self._due if self._due_at is not None else []
        write_keys, ops = self._writes(changes)
        keys = read_keys + write_keys + [self.prefix + "leases", self.prefix + "order", self.prefix + "seq",
                                         self.prefix + "meta"]
        now = "" if self._due_at is None else str(self._due_at)
        floor = self._highest
        reply = self._script(keys, [floor, self._deadline(), len(read_keys), *expected, now, len(due), *due, *ops,
                                    self.policy_sha256])
        if isinstance(reply, list) and reply[0] == -5:  # ran too late: nothing written; our clock may be off
            self._offset_us = None
            return False
        if isinstance(reply, list) and reply[0] == -2:
            self._forget()
            raise StoreError("Redis no longer holds this store's data (a restart without persistence, FLUSHALL "
                             "or eviction): budgets, nonces and calls in flight are gone, so nothing is decided "
                             "until an engine opens the store again and starts it afresh")
        if isinstance(reply, list) and reply[0] == -6:
            self._forget()
            raise StoreError(superseded("the Redis store", reply[1] if len(reply) > 1 else None))
        if isinstance(reply, list) and reply[0] == -3:  # the counter went back: reserve numbers above ours
            self._forget()
            self._seq_next = self._seq_end = 0
            return False
        if isinstance(reply, list) and reply[0] == -4:
            self._seq_next = self._seq_end = 0  # never this block again: the next step reserves anew
            raise StoreError("a new call's number is already in use: the decision counter is damaged")
        if isinstance(reply, list):  # stale: [-1, values held, due lease pairs]
            held = reply[1:len(read_keys) + 1]
            self._remember(dict(zip(read_keys, (None if v == NIL else v for v in held), strict=True)))
            if self._due_at is not None:
                pairs = reply[len(read_keys) + 1:]
                self._leases = {s: d for s, d in self._leases.items() if d > self._due_at}
                self._leases.update((str(m), int(float(s))) for m, s in zip(pairs[::2], pairs[1::2], strict=True))
                self._first_deadline = None
            return False
        self.last_order = int(reply)
        self._remember(self._reads)
        for key, op, value, number in zip(write_keys, ops[::3], ops[1::3], ops[2::3], strict=True):
            if op in ("set", "new"):
                self._cache[key] = value
            elif op == "zadd":
                self._leases[value] = number
                if self._first_deadline is not None:
                    self._first_deadline = min(self._first_deadline, number)
            else:
                self._leases.pop(value, None)
                self._first_deadline = None
        return True

    def _script(self, keys: list[str], args: list[Any]) -> Any:
        """Run the commit script on this store's own connection: redis-py's lower layer
        (pack, send, read) without its per-command machinery, which costs as much as
        the script. Loads the script when Redis does not have it (e.g. after a restart)."""
        if self._conn is None:  # made like the pool's own, but held by this store
            pool = self.client.connection_pool
            self._conn = pool.connection_class(**pool.connection_kwargs)
        conn = self._conn
        try:
            conn.send_packed_command(conn.pack_command("EVALSHA", self._cas_sha, len(keys), *keys, *args),
                                     check_health=False)
            return conn.read_response()
        except self._redis.exceptions.NoScriptError:
            conn.send_packed_command(conn.pack_command("EVAL", CAS_SCRIPT, len(keys), *keys, *args),
                                     check_health=False)
            return conn.read_response()
        except BaseException:
            conn.disconnect()  # the next step connects afresh
            raise

    def _deadline(self) -> int:
        """Half the client's timeout from now, in Redis's own time: a commit script that
        Redis only gets to later (a stall, a slow neighbour) writes nothing, so a step the
        client has given up on and answered `store_unavailable` for is never applied."""
        if self._offset_us is None:
            seconds, micros = self.client.time()
            self._offset_us = seconds * 1_000_000 + micros - int(wallclock.time() * 1_000_000)
        return int(wallclock.time() * 1_000_000) + self._offset_us + int(self.timeout * 500_000)

    def _remember(self, values: dict[str, str | None]) -> None:
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()
        self._cache.update(values)

    def _refresh(self) -> None:
        keys = list(self._reads)
        if keys:
            values: list[str | None] = self.client.mget(keys)  # type: ignore[assignment]  # decode_responses
            self._remember(dict(zip(keys, values, strict=True)))

    def _forget(self) -> None:
        """After a failure nothing cached is trusted (Redis may have restarted empty)."""
        self._cache.clear()
        self._leases.clear()
        self._first_deadline = None

    def _read(self, key: str) -> Any:
        if not self._stepping:  # outside a step (operator commands): ask Redis
            return self.client.get(key)
        if key not in self._reads:
            self._reads[key] = self._cache.get(key)
        return self._reads[key]

    def _writes(self, changes: Changes) -> tuple[list[str], list[Any]]:
        keys: list[str] = []
        ops: list[Any] = []

        def put(key: str, value: str, ttl: int | None) -> None:
            keys.append(key)
            ops.extend(["set", value, ttl or 0])

        for (name, key), entry in changes.entries.items():
            window = self.windows.get(name)
            put(self._entry_key((name, key)), _json([entry.value, entry.written]),
                2 * window + TTL_MARGIN if window else None)
        for (agent, nonce), at in changes.nonces.items():
            put(self.record_key("n", agent, nonce), str(at), self.nonce_ttl + TTL_MARGIN)
        for (agent, key), (fingerprint, at, decision) in changes.idempotency.items():
            record = decision if isinstance(decision, dict) else decision.snapshot()
            put(self.record_key("i", agent, key), _json([fingerprint, at, record]), self.idempotency_ttl + TTL_MARGIN)
        ids = {seq: decision_id for decision_id, seq in changes.ids.items()}
        for seq, p in changes.pending.items():
            body = _json([p.tool, p.args, p.agent, p.time, p.deadline, p.completed])
            if p.completed is None:  # a new call: its number must never have been used
                keys.append(self.record_key("p", seq))
                ops.extend(["new", body, CALL_TTL])
            else:
                put(self.record_key("p", seq), body, CALL_TTL)
            if seq in ids:
                put(self.record_key("id", ids[seq]), str(seq), CALL_TTL)
            if p.deadline is not None:
                keys.append(self.prefix + "leases")
                if p.completed is None:
                    ops.extend(["zadd", str(seq), p.deadline])
                else:
                    ops.extend(["zrem", str(seq), 0])
        return keys, ops

    # ---- reads inside a step ----------------------------------------------------------

    SEQ_BLOCK = 1024  # sequence numbers reserved per INCRBY: unique across engines, not gap-free

    def next_seq(self) -> int:
        if self._seq_next >= self._seq_end:
            # never below a number this process has held: a counter Redis lost starts again above them
            self._seq_end = int(self.client.eval(RESERVE_SCRIPT, 1, self.prefix + "seq", self._highest,
                                                 self.SEQ_BLOCK)) + 1
            self._seq_next = self._seq_end - self.SEQ_BLOCK
            self._highest = self._seq_end - 1
        self._seq_next += 1
        return self._seq_next - 1

    def entry(self, key: EntryKey) -> Entry | None:
        raw = self._read(self._entry_key(key))
        if raw is None:
            return None
        value, written = json.loads(raw)
        return Entry(value, written)

    def nonce(self, scope: tuple[str, str]) -> int | None:
        raw = self._read(self.record_key("n", *scope))
        return None if raw is None else int(raw)

    def idempotency(self, scope: tuple[str, str]) -> Any:
        raw = self._read(self.record_key("i", *scope))
        return None if raw is None else tuple(json.loads(raw))

    def pending(self, seq: int) -> Pending | None:
        raw = self._read(self.record_key("p", seq))
        return None if raw is None else Pending(*json.loads(raw))

    def remember_id(self, decision_id: str, seq: int) -> None:
        """Nothing to do: the step that allowed the call recorded its id."""

    def seq_for(self, decision_id: str) -> int | None:
        raw = self._read(self.record_key("id", decision_id))
        return None if raw is None else int(raw)

    def due_leases(self, now: int) -> list[int]:
        """The leases due at `now` as this process knows them; the commit checks Redis agrees."""
        if self._first_deadline is None:
            self._first_deadline = min(self._leases.values(), default=None)
        if self._first_deadline is None or now < self._first_deadline:
            due: list[str] = []  # the common case, without looking at every lease
        else:
            due = sorted((seq for seq, deadline in self._leases.items() if deadline <= now), key=int)
        self._due_at, self._due = now, due
        return [int(seq) for seq in due]

    # ---- whole-state operations -----------------------------------------------------------

    def open_calls(self) -> list[int]:
        seqs = []
        try:
            for key in self.client.scan_iter(match=self.prefix + "p:*", count=1000):
                raw = self.client.get(key)
                if raw is not None and json.loads(raw)[5] is None:
                    seqs.append(int(json.loads(key[len(self.prefix) + 2:])[0]))
        except self._redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
        except (ValueError, TypeError, IndexError) as exc:
            raise StoreError(f"the Redis store holds a call record it cannot read: {exc}") from exc
        return sorted(seqs)

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
        except (ValueError, TypeError) as exc:  # a key or value that is not what the store writes
            raise StoreError(f"the Redis store holds an entry it cannot read: {exc}") from exc
        return out

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        self._forget()
        try:
            old = list(self.client.scan_iter(match=self.prefix + "e:*", count=1000))
            with self.client.pipeline(transaction=True) as pipe:
                if old:
                    pipe.delete(*old)
                for (name, key), entry in entries.items():
                    pipe.set(self.record_key("e", name, key), json.dumps([entry.value, entry.written]))
                pipe.execute()
        except self._redis.RedisError as exc:
            raise StoreError(f"Redis is unavailable: {exc}") from exc
