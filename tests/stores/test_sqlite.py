"""The SQLite store: durable, shared by processes, atomic, fail-closed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.sqlite_store import SQLiteStore, StoreMismatchError
from oxdeai.runtime.store_urls import open_store
from tests.conftest import ACCEPTANCE, ROOT, json_lines, run_cli
from tests.stores.concurrency import CONCURRENT, T0, run_linearizable


def test_acceptance_traces_through_sqlite(tmp_path: Path) -> None:
    expect = json.loads((ACCEPTANCE / "01-payments" / "expect.json").read_text())
    for index, spec in enumerate(expect["traces"]):
        trace = tmp_path / f"t{index}.jsonl"
        trace.write_text("\n".join(json.dumps(line) for line in spec["trace"]) + "\n")
        db = tmp_path / f"t{index}.db"
        code, out = run_cli("eval", str(ACCEPTANCE / "01-payments" / "policy.oxp"), "--trace", f"@{trace}",
                            "--store", f"sqlite:///{db}")
        assert code == 0, out
        for line, want in zip(json_lines(out), spec["expect"], strict=True):
            if want is not None:
                assert line["decision"] == want["decision"]


def test_state_survives_restarts_and_completions_cross_engines(tmp_path: Path) -> None:
    policy = load_policy(CONCURRENT)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = Engine(policy, store=open_store(url, policy))
    call = {"tool": "pay.send", "args": {"amount": 40}, "nonce": "n1", "idempotency_key": "k1"}
    decision = first.decide(call, {"agent": {"id": "a"}, "time": T0})
    assert decision.allowed
    second = Engine(policy, store=open_store(url, policy))
    assert second.export_state()["budget"]["value"] == 40
    repeat = second.decide({**call, "nonce": "n2"}, {"agent": {"id": "a"}, "time": T0 + 1})
    assert repeat.allowed and repeat.repeat and repeat.decision_id == decision.decision_id
    replayed = second.decide({**call, "idempotency_key": "k2"}, {"agent": {"id": "a"}, "time": T0 + 2})
    assert [r[0] for r in replayed.reasons] == ["replay"]
    second.complete(decision.decision_id, "failed", T0 + 3)
    assert first.export_state()["budget"]["value"] == 0
    with pytest.raises(CompletionError):
        first.complete(decision.decision_id, "ok", T0 + 4)


def test_another_policy_version_is_refused_unless_migrated(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path, "a" * 64).close()
    with pytest.raises(StoreMismatchError):
        SQLiteStore(path, "b" * 64)
    SQLiteStore(path, "b" * 64, migrate=True).close()


def test_the_refusal_tells_another_policy_from_another_version_of_this_one(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    SQLiteStore(path, "a" * 64, policy_name="shop").close()
    with pytest.raises(StoreMismatchError, match="another version of this policy .*oxdeai state rollout"):
        SQLiteStore(path, "b" * 64, policy_name="shop")
    with pytest.raises(StoreMismatchError, match="belongs to another policy, `shop` \\(this is `payments`\\)"):
        SQLiteStore(path, "b" * 64, policy_name="payments")


def test_opening_beside_a_deciding_engine_never_sees_a_damaged_counter(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: opening a store read `seq` and the highest recorded call in two snapshots,
    so an engine deciding between the two reads made a healthy store look damaged. Here
    another engine tries to decide exactly between them (from SQLite's statement trace)."""
    policy = load_policy(CONCURRENT)
    path = tmp_path / "state.db"
    other = Engine(policy, store=SQLiteStore(str(path), policy.sha256, timeout=0.1))
    real_connect = sqlite3.connect
    tried: list[bool] = []

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = real_connect(*args, **kwargs)

        def between(sql: str) -> None:
            if sql.startswith("SELECT max(seq) FROM pending") and not tried:
                d = other.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": "n", "idempotency_key": "k"},
                                 {"agent": {"id": "a"}, "time": T0})
                tried.append(d.allowed)  # denied when the opener holds the write lock, as it must

        db.set_trace_callback(between)
        return db

    monkeypatch.setattr(sqlite3, "connect", connect)
    SQLiteStore(str(path), policy.sha256).close()  # raised StoreError ("counter is damaged") before the fix
    assert tried == [False]


def test_store_failure_denies_and_recovers(tmp_path: Path) -> None:
    """A store that cannot take its write lock (another connection holds it) denies
    `store_unavailable`, changes nothing, and decides again once the lock is free."""
    policy = load_policy(CONCURRENT)
    store = SQLiteStore(str(tmp_path / "state.db"), policy.sha256, timeout=0.2)
    engine = Engine(policy, store=store)
    holder = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    call = {"tool": "pay.send", "args": {"amount": 5}, "nonce": "n", "idempotency_key": "k"}
    denied = engine.decide(call, {"agent": {"id": "a"}, "time": T0})
    assert not denied.allowed and [r[0] for r in denied.reasons] == ["store_unavailable"]
    holder.execute("ROLLBACK")
    holder.close()
    assert engine.export_state() == {}
    assert engine.decide(call, {"agent": {"id": "a"}, "time": T0}).allowed


def test_concurrent_processes_are_linearizable(tmp_path: Path) -> None:
    run_linearizable(f"sqlite:///{tmp_path / 'state.db'}", tmp_path, future=True)


CRASHER = """
import sys
from oxdeai import load_policy
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.store_urls import open_store
from tests.stores.concurrency import CONCURRENT, T0
policy = load_policy(CONCURRENT)
engine = Engine(policy, store=open_store(sys.argv[1], policy))
i = 0
while True:
    d = engine.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": str(i), "idempotency_key": str(i)},
                      {"agent": {"id": "c"}, "time": T0 + i // 100})
    if d.allowed:
        engine.complete(d.decision_id, "ok", T0 + i // 100)
    i += 1
    if i == 50:
        print("running", flush=True)
"""


def test_sigkill_leaves_the_store_consistent(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, f"sqlite:///{db}"], cwd=ROOT, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"running"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    conn = sqlite3.connect(db)
    allowed = conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
    open_calls = conn.execute("SELECT COUNT(*) FROM pending WHERE completed IS NULL").fetchone()[0]
    entries = dict(((n, k), json.loads(v)) for n, k, v in conn.execute("SELECT name, key, value FROM entries"))
    assert allowed > 0
    # every recorded decision's effects are applied, and no effect is without its decision
    assert entries[("budget", "")] == allowed
    assert entries[("rate", "c")] <= allowed
    assert entries[("inflight", "")] == open_calls


def test_storage_stays_bounded_under_a_steady_stream(tmp_path: Path) -> None:
    policy = load_policy(CONCURRENT.replace("require nonce within 1h", "require nonce within 1m")
                         .replace("idempotent on pay.send within 1h", "idempotent on pay.send within 1m"))
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", policy)
    engine = Engine(policy, store=store)
    for i in range(6_000):
        d = engine.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": str(i), "idempotency_key": str(i)},
                          {"agent": {"id": f"a{i % 50}"}, "time": T0 + i})  # one call a second, for 100 minutes
        if d.allowed:
            engine.complete(d.decision_id, "ok", T0 + i)
    db = sqlite3.connect(tmp_path / "state.db")
    nonces = db.execute("SELECT COUNT(*) FROM nonces").fetchone()[0]
    records = db.execute("SELECT COUNT(*) FROM idempotency").fetchone()[0]
    assert nonces < 600 and records < 600  # about a window's worth (60) plus one purge interval, not 6,000


def test_data_that_does_not_fit_the_policy_is_store_unavailable(tmp_path: Path) -> None:
    policy = load_policy(CONCURRENT)
    engine = Engine(policy, store=open_store(f"sqlite:///{tmp_path / 'state.db'}", policy))
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("""INSERT INTO entries VALUES ('budget', '', '"lots"', NULL)""")
    d = engine.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": "n", "idempotency_key": "k"},
                      {"agent": {"id": "a"}, "time": T0})
    assert [r[0] for r in d.reasons] == ["store_unavailable"]
