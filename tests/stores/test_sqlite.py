"""The SQLite store: durable, shared by processes, atomic, fail-closed."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
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
from oxdeai.runtime.sqlite_store import SQLiteStore, StoreMismatchError, open_store
from tests.conftest import ACCEPTANCE, ROOT, json_lines, run_cli

CONCURRENT = """policy concurrent version "1"
agent { id: string }
tool pay.send(amount: int[1..100])
limit budget on pay.send: sum args.amount every 1d <= 5_000
limit inflight on pay.send: concurrent <= 3
limit rate on pay.send: count per agent.id every 1m <= 150
effect on complete pay.send when outcome == "failed": budget -= args.amount
allow send on pay.send
require nonce within 1h
idempotent on pay.send within 1h
"""
T0 = 1_764_000_000


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
    first = Engine(policy, store=open_store(url, policy.sha256))
    call = {"tool": "pay.send", "args": {"amount": 40}, "nonce": "n1", "idempotency_key": "k1"}
    decision = first.decide(call, {"agent": {"id": "a"}, "time": T0})
    assert decision.allowed
    second = Engine(policy, store=open_store(url, policy.sha256))
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


def test_store_failure_denies_and_recovers(tmp_path: Path) -> None:
    policy = load_policy(CONCURRENT)
    store = SQLiteStore(str(tmp_path / "state.db"), policy.sha256)
    engine = Engine(policy, store=store)
    healthy = store._db

    class Broken:
        def execute(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("disk I/O error")

    store._db = Broken()  # type: ignore[assignment]
    call = {"tool": "pay.send", "args": {"amount": 5}, "nonce": "n", "idempotency_key": "k"}
    denied = engine.decide(call, {"agent": {"id": "a"}, "time": T0})
    assert not denied.allowed and [r[0] for r in denied.reasons] == ["store_unavailable"]
    store._db = healthy
    assert engine.export_state() == {}
    assert engine.decide(call, {"agent": {"id": "a"}, "time": T0}).allowed


def _worker(url: str, worker: int, count: int, out: str) -> None:
    policy = load_policy(CONCURRENT)
    engine = Engine(policy, store=open_store(url, policy.sha256))
    rng = random.Random(worker)
    agent = {"id": f"w{worker}"}
    events: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    outstanding: list[tuple[str, int]] = []
    for i in range(count):
        now = T0 + i // 10
        if outstanding and (rng.random() < 0.5 or len(outstanding) > 1):
            decision_id, seq = outstanding.pop(0)
            outcome = rng.choice(["ok", "failed"])
            try:
                engine.complete(decision_id, outcome, now)
                events.append({"kind": "complete", "event": engine.last_completion_event, "of": seq,
                               "outcome": outcome, "time": now})
            except CompletionError:
                pass
        call = {"tool": "pay.send", "args": {"amount": rng.randint(1, 100)}, "nonce": f"{worker}-{i}",
                "idempotency_key": f"{worker}-{i}"}
        if sent and rng.random() < 0.05:  # a retry: same key and call, fresh nonce
            call = {**rng.choice(sent), "nonce": f"{worker}-{i}-retry"}
        elif sent and rng.random() < 0.05:  # a replayed nonce
            call["nonce"] = rng.choice(sent)["nonce"]
        decision = engine.decide(call, {"agent": agent, "time": now})
        sent.append(call)
        inflight = [after for name, _, _, after in decision.effects if name == "inflight"]
        events.append({"kind": "decide", "event": decision.event, "seq": decision.seq, "call": call, "time": now,
                       "allowed": decision.allowed, "repeat": decision.repeat, "inflight": inflight,
                       "codes": [r[0] for r in decision.reasons]})
        if decision.allowed and not decision.repeat:
            outstanding.append((decision.decision_id, decision.seq))
    Path(out).write_text(json.dumps({"agent": agent, "events": events}))


@pytest.mark.parametrize("workers,count", [(8, 2_000)])
def test_concurrent_processes_are_linearizable(tmp_path: Path, workers: int, count: int) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, w, count, str(tmp_path / f"w{w}.json"))) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
        assert p.exitcode == 0
    logs = [json.loads((tmp_path / f"w{w}.json").read_text()) for w in range(workers)]
    events = sorted(((e, log["agent"]) for log in logs for e in log["events"]), key=lambda pair: pair[0]["event"])
    assert len({e["event"] for e, _ in events}) == len(events)  # one total order
    # the same requests one at a time, in that order, on an in-memory engine
    serial = Engine(load_policy(CONCURRENT))
    ids: dict[int, str] = {}
    allowed = 0
    for event, agent in events:
        if event["kind"] == "complete":
            serial.complete(ids[event["of"]], event["outcome"], event["time"])
            continue
        d = serial.decide(event["call"], {"agent": agent, "time": event["time"]})
        assert (d.allowed, d.repeat) == (event["allowed"], event["repeat"]), (event, d.reasons)
        if d.allowed and not d.repeat:
            ids[event["seq"]] = d.decision_id
            allowed += 1
        assert all(v <= 3 for v in event["inflight"])  # the cap held at every instant
    assert allowed > 50
    seen = {code for e, _ in events if e["kind"] == "decide" for code in e["codes"]}
    assert {"limit_exceeded", "replay"} <= seen  # the gates and replay protection were exercised
    assert any(e["kind"] == "decide" and e["repeat"] for e, _ in events)  # and retries answered from records
    assert sum(e["kind"] == "decide" for e, _ in events) == workers * count
    decided = [(e, a) for e, a in events if e["kind"] == "decide" and e["allowed"] and not e["repeat"]]
    nonces = [(a["id"], e["call"]["nonce"]) for e, a in decided]
    keys = [(a["id"], e["call"]["idempotency_key"]) for e, a in decided]
    assert len(set(nonces)) == len(nonces) and len(set(keys)) == len(keys)
    final = Engine(load_policy(CONCURRENT), store=open_store(url, load_policy(CONCURRENT).sha256)).export_state()
    assert final["budget"]["value"] <= 5_000 and final["budget"]["value"] == serial.export_state()["budget"]["value"]


CRASHER = """
import sys
from oxdeai import load_policy
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.sqlite_store import open_store
from tests.stores.test_sqlite import CONCURRENT, T0
policy = load_policy(CONCURRENT)
engine = Engine(policy, store=open_store(sys.argv[1], policy.sha256))
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
