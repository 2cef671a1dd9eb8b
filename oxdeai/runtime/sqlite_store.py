"""A durable state store in one SQLite file (WAL mode), shared by processes on one host.

Contract: `atomic(step)` is one `BEGIN IMMEDIATE` transaction: the write lock is
taken before the first read, so the reads, the decision and the writes of effects,
nonce, idempotency record and pending call are one linearizable step; a crash
leaves either all of it or none. A busy database is retried until `timeout`; any
other failure raises `StoreError`, which the engine turns into a DENY
`store_unavailable` with nothing applied. The file records the policy's SHA-256:
a store written by another policy version is refused unless migrated.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from oxdeai.runtime.store import CALL_TTL, CLOCK, Changes, Entry, EntryKey, Pending, StoreError, mismatch, superseded

T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, written INTEGER,
                                    PRIMARY KEY (name, key));
CREATE TABLE IF NOT EXISTS nonces (agent TEXT NOT NULL, nonce TEXT NOT NULL, time INTEGER NOT NULL,
                                   PRIMARY KEY (agent, nonce));
CREATE TABLE IF NOT EXISTS idempotency (agent TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
                                        time INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (agent, key));
CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, decision_id TEXT, tool TEXT NOT NULL,
                                    args TEXT NOT NULL, agent TEXT NOT NULL, time INTEGER NOT NULL,
                                    deadline INTEGER, completed TEXT);
CREATE INDEX IF NOT EXISTS pending_by_id ON pending (decision_id);
CREATE INDEX IF NOT EXISTS pending_due ON pending (deadline) WHERE completed IS NULL AND deadline IS NOT NULL;
"""


class StoreMismatchError(StoreError):
    """The store holds state written under a different policy version."""


class SQLiteStore:
    durable = True
    last_order: int | None = None

    PURGE_EVERY = 256  # commits between purges
    PURGE_BATCH = 500  # rows deleted per table per purge: purging never stalls a decision for long

    def __init__(self, path: str, policy_sha256: str, migrate: bool = False, timeout: float = 5.0,
                 windows: dict[str, int] | None = None, nonce_ttl: int = 86_400,
                 idempotency_ttl: int = 86_400, completes: frozenset[str] | None = None,
                 policy_name: str = "") -> None:
        """`completes`: the tools whose completion does something; an uncompleted call of any
        other tool is forgotten after CALL_TTL like a finished one (None: keep them all)."""
        self.path = path
        self.policy_sha256 = policy_sha256
        self._abspath = os.path.abspath(path)  # the identity check must not follow a later chdir
        self.completes = completes
        self.timeout = timeout
        self.windows = windows or {}
        self.nonce_ttl = nonce_ttl
        self.idempotency_ttl = idempotency_ttl
        self._commits = 0
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            self._bind_policy(policy_sha256, migrate, policy_name)  # checks the counter in the same transaction
            self._identity = self._file_identity()
        except (sqlite3.Error, UnicodeDecodeError, ValueError) as exc:  # a damaged file's message may not decode
            raise StoreError(f"cannot open the SQLite store `{path}`: {exc}") from exc

    def _file_identity(self) -> tuple[tuple[int, int] | None, ...]:
        """(device, inode) of the database file and its WAL, None where missing."""
        out: list[tuple[int, int] | None] = []
        for path in (self._abspath, self._abspath + "-wal"):
            try:
                st = os.stat(path)
                out.append((st.st_dev, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def _check_file(self) -> None:
        """Fail closed when the file this connection holds is no longer the file at its
        path: a deleted or replaced store would split the state between engines."""
        if self._file_identity() != self._identity:
            raise StoreError(f"the SQLite store file `{self.path}` (or its -wal file) was deleted or replaced "
                             "while open; every engine must open the store again")

    def _check_counter(self) -> None:
        """Inside a transaction only: two reads in autocommit mode see two snapshots, and a
        concurrent engine's decision between them would look like a damaged counter."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        top = self._db.execute("SELECT max(seq) FROM pending").fetchone()[0] or 0
        if row is None or not str(row[0]).isdigit() or int(row[0]) < top:
            raise StoreError(f"the SQLite store's decision counter is damaged (meta `seq` = {row and row[0]!r}, "
                             f"but calls up to {top} are recorded); repair it to at least {top}")

    def _bind_policy(self, sha: str, migrate: bool, name: str) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'policy'").fetchone()
            if row is None or migrate:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('policy', ?)", (sha,))
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('policy_name', ?)", (name,))
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('seq', '0')")
            elif row[0] != sha:
                named = self._db.execute("SELECT value FROM meta WHERE key = 'policy_name'").fetchone()
                raise StoreMismatchError(mismatch(f"the store `{self.path}`", row[0], named[0] if named else None,
                                                  name))
            self._check_counter()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # ---- the atomic step ------------------------------------------------------------

    def atomic(self, step: Callable[..., tuple[T, Changes | None]], *args: Any) -> T:
        deadline = time.monotonic() + self.timeout
        with self._lock:
            while True:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    if "locked" in str(exc) or "busy" in str(exc):
                        if time.monotonic() < deadline:
                            continue
                    raise StoreError(f"the SQLite store is unavailable: {exc}") from exc
                except sqlite3.Error as exc:
                    raise StoreError(f"the SQLite store is unavailable: {exc}") from exc
                try:
                    self._check_file()
                    self._check_binding()
                    result, changes = step(self, *args)
                    if changes is not None:
                        self._apply(changes)
                    self._commits += 1
                    if self._commits % self.PURGE_EVERY == 0:
                        self._purge()
                    self._db.execute("COMMIT")
                    return result
                except (ValueError, TypeError, KeyError) as exc:  # stored data that does not decode
                    self._rollback()
                    raise StoreError(f"the SQLite store holds data that does not fit the policy: {exc}") from exc
                except sqlite3.Error as exc:
                    self._rollback()
                    raise StoreError(f"the SQLite store failed: {exc}") from exc
                except BaseException:
                    self._rollback()
                    raise

    def _check_binding(self) -> None:
        """Inside the step's transaction: the store still belongs to this policy version.
        Another process that rolled it over (or migrated it) has given its entries other
        meanings; a step of this version then decides nothing (store_unavailable)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'policy'").fetchone()
        if row is None or row[0] != self.policy_sha256:
            raise StoreError(superseded(f"the SQLite store `{self.path}`", row[0] if row else None))

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _purge(self) -> None:
        """Forget what can no longer matter: nonces and idempotency records past their
        window, finished calls past the completion horizon, entries whose window has
        long passed (they read as their initial value anyway). Driven by the store's clock
        (store.CLOCK): every later step is decided at or after it, whatever time a request
        carries, so nothing deleted here can be read again."""
        db, batch = self._db, self.PURGE_BATCH
        row = db.execute("SELECT value FROM entries WHERE name = ? AND key = ?", CLOCK).fetchone()
        now = json.loads(row[0]) if row is not None else 0
        if type(now) is not int:
            raise ValueError("the store's clock is not a time")
        db.execute("DELETE FROM nonces WHERE rowid IN (SELECT rowid FROM nonces WHERE time < ? LIMIT ?)",
                   (now - self.nonce_ttl, batch))
        db.execute("DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency WHERE time < ? LIMIT ?)",
                   (now - self.idempotency_ttl, batch))
        keep = sorted(self.completes) if self.completes is not None else None
        idle = "" if keep is None else f" OR tool NOT IN ({', '.join('?' * len(keep))})"
        db.execute(f"DELETE FROM pending WHERE seq IN (SELECT seq FROM pending WHERE (completed IS NOT NULL{idle}) "
                   "AND time < ? LIMIT ?)", (*(keep or []), now - CALL_TTL, batch))
        for name, window in self.windows.items():
            db.execute("DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries WHERE name = ? "
                       "AND written < ? LIMIT ?)", (name, now - 2 * window, batch))

    def _apply(self, changes: Changes) -> None:
        db = self._db
        db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                       [(n, k, json.dumps(e.value), e.written) for (n, k), e in changes.entries.items()])
        db.executemany("INSERT OR REPLACE INTO nonces VALUES (?, ?, ?)",
                       [(a, n, t) for (a, n), t in changes.nonces.items()])
        rows = []
        for (agent, key), (fingerprint, at, decision) in changes.idempotency.items():
            record = decision if isinstance(decision, dict) else decision.snapshot()
            rows.append((agent, key, fingerprint, at, json.dumps(record, ensure_ascii=False)))
        db.executemany("INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?)", rows)
        ids = {seq: decision_id for decision_id, seq in changes.ids.items()}
        for seq, p in changes.pending.items():
            if p.completed is not None:
                db.execute("UPDATE pending SET completed = ? WHERE seq = ?", (p.completed, seq))
                continue
            try:  # a new call: its number must never have been used (a damaged counter would reuse it)
                db.execute("INSERT INTO pending VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (seq, ids.get(seq), p.tool, json.dumps(p.args, ensure_ascii=False),
                            json.dumps(p.agent, ensure_ascii=False), p.time, p.deadline, None))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"decision number {seq} is already in use: the SQLite store's decision counter "
                                 "is damaged") from exc

    # ---- reads inside a step -----------------------------------------------------------

    def next_seq(self) -> int:
        """The next decision number; a counter that is not a plain number is damaged, never used."""
        row = self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq' "
                               "AND value GLOB '[0-9]*' AND NOT value GLOB '*[^0-9]*' RETURNING value").fetchone()
        if row is None:
            raise StoreError("the SQLite store's decision counter is damaged (meta `seq` is not a number)")
        return int(row[0])

    def entry(self, key: EntryKey) -> Entry | None:
        row = self._db.execute("SELECT value, written FROM entries WHERE name = ? AND key = ?", key).fetchone()
        return None if row is None else Entry(json.loads(row[0]), row[1])

    def nonce(self, scope: tuple[str, str]) -> int | None:
        row = self._db.execute("SELECT time FROM nonces WHERE agent = ? AND nonce = ?", scope).fetchone()
        return None if row is None else int(row[0])

    def idempotency(self, scope: tuple[str, str]) -> Any:
        row = self._db.execute("SELECT fingerprint, time, record FROM idempotency WHERE agent = ? AND key = ?",
                               scope).fetchone()
        return None if row is None else (row[0], int(row[1]), json.loads(row[2]))

    def pending(self, seq: int) -> Pending | None:
        row = self._db.execute("SELECT tool, args, agent, time, deadline, completed FROM pending WHERE seq = ?",
                               (seq,)).fetchone()
        if row is None:
            return None
        return Pending(row[0], json.loads(row[1]), json.loads(row[2]), row[3], row[4], row[5])

    def remember_id(self, decision_id: str, seq: int) -> None:
        """Nothing to do: the step that allowed the call recorded its id."""

    def seq_for(self, decision_id: str) -> int | None:
        row = self._db.execute("SELECT seq FROM pending WHERE decision_id = ?", (decision_id,)).fetchone()
        return None if row is None else int(row[0])

    def due_leases(self, now: int) -> list[int]:
        rows = self._db.execute("SELECT seq FROM pending WHERE completed IS NULL AND deadline IS NOT NULL "
                                "AND deadline <= ? ORDER BY deadline, seq", (now,)).fetchall()
        return [int(r[0]) for r in rows]

    # ---- whole-state operations ---------------------------------------------------------

    def open_calls(self) -> list[int]:
        with self._lock:
            return [int(r[0]) for r in self._db.execute("SELECT seq FROM pending WHERE completed IS NULL ORDER BY seq")]

    def entries(self) -> dict[EntryKey, Entry]:
        with self._lock:
            try:
                rows = self._db.execute("SELECT name, key, value, written FROM entries").fetchall()
                return {(n, k): Entry(json.loads(v), w) for n, k, v, w in rows}
            except (sqlite3.Error, ValueError, TypeError) as exc:  # ValueError: a value that is not JSON
                raise StoreError(f"the SQLite store cannot be read: {exc}") from exc

    def replace_entries(self, entries: dict[EntryKey, Entry]) -> None:
        def step(store: SQLiteStore) -> tuple[None, None]:
            store._db.execute("DELETE FROM entries")
            store._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?)",
                                  [(n, k, json.dumps(e.value), e.written) for (n, k), e in entries.items()])
            return None, None

        self.atomic(step)

    def close(self) -> None:
        self._db.close()
