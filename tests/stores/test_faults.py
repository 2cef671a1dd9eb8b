"""Store faults from the outside review, on real stores: a Redis that loses its data,
a commit script that fails, an evicting Redis, a deleted SQLite file, a damaged
decision counter. Each must be survived without losing or inventing anything: no
number given to two calls, no completion applied to another call, no half-applied step."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.sqlite_store import SQLiteStore
from oxdeai.runtime.store import StoreError
from oxdeai.runtime.store_urls import open_store
from tests.conftest import EXAMPLES, run_cli, run_trace
from tests.stores.concurrency import CONCURRENT, T0
from tests.stores.test_redis import RedisServer, redis_server  # noqa: F401  (the fixture)

EXAMPLES_PAYMENTS = EXAMPLES / "payments.oxp"
BUDGET = """policy faults version "1"
agent { id: string }
tool pay.send(amount: int[1..1000])
limit budget on pay.send: sum args.amount <= 100_000
limit inflight on pay.send: concurrent <= 1_000
effect on complete pay.send when outcome == "failed": budget -= args.amount
allow send on pay.send
"""


def send(engine: Engine, amount: int, now: int = T0) -> Any:
    return engine.decide({"tool": "pay.send", "args": {"amount": amount}}, {"agent": {"id": "a"}, "time": now})


# ---- Redis ----------------------------------------------------------------------------


def test_after_a_flush_numbers_stay_unique_and_completions_find_their_own_call(
        redis_server: RedisServer) -> None:  # noqa: F811
    url, policy = redis_server.url(), load_policy(BUDGET)
    old = Engine(policy, store=open_store(url, policy))
    before = [send(old, 10) for _ in range(3)]
    assert all(d.allowed for d in before)
    old.store.client.flushall()
    assert [r[0] for r in send(old, 10).reasons] == ["store_unavailable"]  # the budget is gone: refuse
    new = Engine(policy, store=open_store(url, policy))  # an engine opens it again: a fresh store
    small, big = send(old, 10), send(new, 100)
    assert small.allowed and big.allowed and small.seq != big.seq
    seqs = [d.seq for d in before]
    assert small.seq not in seqs and big.seq not in seqs  # never a number from before the flush
    assert old.complete(small.decision_id, "failed", T0) == (("budget", "", 110, 100), ("inflight", "", 2, 1))
    assert new.complete(big.decision_id, "ok", T0) == (("inflight", "", 1, 0),)
    with pytest.raises(CompletionError):  # a call from before the flush is gone with the data
        old.complete(before[0].decision_id, "failed", T0)


def test_a_failing_commit_script_writes_nothing(redis_server: RedisServer) -> None:  # noqa: F811
    url, policy = redis_server.url(), load_policy(BUDGET)
    engine = Engine(policy, store=open_store(url, policy))
    assert send(engine, 100).allowed
    client = engine.store.client
    prefix = engine.store.prefix
    client.set(prefix + "order", "not a number")
    for _ in range(3):
        assert [r[0] for r in send(engine, 100).reasons] == ["store_unavailable"]
    assert json.loads(client.get(prefix + 'e:["budget",""]'))[0] == 100  # nothing was applied
    client.delete(prefix + "leases")
    client.hset(prefix + "leases", "x", "y")  # the lease set of the wrong type
    client.set(prefix + "order", "7")
    assert [r[0] for r in send(engine, 100).reasons] == ["store_unavailable"]
    assert json.loads(client.get(prefix + 'e:["budget",""]'))[0] == 100
    client.delete(prefix + "leases")
    assert send(engine, 100).allowed


def test_a_damaged_counter_is_never_used(redis_server: RedisServer) -> None:  # noqa: F811
    url, policy = redis_server.url(), load_policy(BUDGET)
    engine = Engine(policy, store=open_store(url, policy))
    first = send(engine, 10)
    client, prefix = engine.store.client, engine.store.prefix
    other = Engine(policy, store=open_store(url, policy))
    client.set(prefix + "seq", "0")  # set back: the next block would reuse numbers
    refused = send(other, 20)
    assert not refused.allowed and "already in use" in refused.reasons[0][2]
    assert send(engine, 5).allowed  # an engine holding higher numbers lifts the counter above them
    fresh = send(other, 20)
    assert fresh.allowed and fresh.seq > first.seq
    assert engine.complete(first.decision_id, "failed", T0)[0] == ("budget", "", 35, 25)


def test_a_redis_that_evicts_keys_is_refused(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    server.start()
    try:
        policy = load_policy(BUDGET)
        with pytest.raises(StoreError, match="noeviction"):
            open_store(server.url(), policy)
        code, out = run_cli("state", "show", "--store", server.url(), "--policy", str(write(tmp_path, BUDGET)))
        assert code == 2 and "noeviction" in out
    finally:
        server.stop()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.oxp"
    path.write_text(text, encoding="utf-8")
    return path


def test_ids_and_hashes_do_not_depend_on_what_a_process_remembered(redis_server: RedisServer,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    policy_path = write(tmp_path, BUDGET)
    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps({"tool": "pay.send", "args": {"amount": 5 + i}, "agent": {"id": "a"},
                                         "time": T0 + i}) + "\n" for i in range(6)))
    outputs = []
    for store in ("memory://", f"sqlite:///{tmp_path / 's.db'}", redis_server.url()):
        code, out = run_cli("eval", str(policy_path), "--store", store, "--trace", f"@{trace}",
                            "--state", '{"budget": 40, "inflight": 2}')
        assert code == 0
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]


def _flush_worker(url: str, worker: int, count: int, out: str) -> None:
    policy = load_policy(CONCURRENT)
    engine = Engine(policy, store=open_store(url, policy))
    rng = random.Random(worker)
    log: list[dict[str, Any]] = []
    open_calls: list[tuple[str, int, int]] = []
    for i in range(count):
        now = T0 + i // 10
        if open_calls and rng.random() < 0.5:
            decision_id, seq, amount = open_calls.pop(0)
            outcome = rng.choice(["ok", "failed"])
            try:
                effects = engine.complete(decision_id, outcome, now)
                log.append({"kind": "complete", "seq": seq, "amount": amount, "outcome": outcome,
                            "effects": [list(e) for e in effects]})
            except CompletionError as exc:
                log.append({"kind": "refused", "seq": seq, "why": str(exc)})
        amount = rng.randint(1, 100)
        call = {"tool": "pay.send", "args": {"amount": amount}, "nonce": f"{worker}-{i}",
                "idempotency_key": f"{worker}-{i}"}
        decision = engine.decide(call, {"agent": {"id": f"w{worker}"}, "time": now})
        if decision.allowed and not decision.repeat:
            open_calls.append((decision.decision_id, decision.seq, amount))
            log.append({"kind": "allow", "seq": decision.seq, "id": decision.decision_id, "amount": amount,
                        "agent": f"w{worker}"})
        elif not decision.allowed:
            log.append({"kind": "deny", "codes": [r[0] for r in decision.reasons]})
    Path(out).write_text(json.dumps(log))


def test_eight_processes_survive_a_flushall_mid_run(redis_server: RedisServer, tmp_path: Path) -> None:  # noqa: F811
    url = redis_server.url()
    policy = load_policy(CONCURRENT)
    admin = open_store(url, policy)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_flush_worker, args=(url, w, 2_000, str(tmp_path / f"w{w}.json"))) for w in range(8)]
    for p in procs:
        p.start()

    def flush_then_reopen() -> None:
        deadline = time.monotonic() + 60
        while int(admin.client.get(admin.prefix + "order") or 0) < 3_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        admin.client.flushall()
        time.sleep(0.3)  # the engines refuse meanwhile
        open_store(url, policy)  # an operator starts the store afresh

    flusher = threading.Thread(target=flush_then_reopen)
    flusher.start()
    for p in procs:
        p.join(600)
        assert p.exitcode == 0
    flusher.join()
    logs = [json.loads((tmp_path / f"w{w}.json").read_text()) for w in range(8)]
    allowed = [e for log in logs for e in log if e["kind"] == "allow"]
    # a call allowed after the flush is still recorded under its id, and its number's record holds
    # that very call; one allowed before is not (the flush took it, so no completion can reach it:
    # a number from before may come back, never onto a call the store knows). Within each, no
    # number was given to two calls.
    after, before = [], []
    for e in allowed:
        recorded = admin.client.get(admin.record_key("id", e["id"]))
        if recorded is None:
            before.append(e)
            continue
        assert int(recorded) == e["seq"]
        tool, args, agent, *_ = json.loads(admin.client.get(admin.record_key("p", e["seq"])))
        assert (args["amount"], agent["id"]) == (e["amount"], e["agent"]), e  # never another call's record
        after.append(e)
    for group in (before, after):
        assert len({e["seq"] for e in group}) == len(group)
    assert before and after
    assert any("store_unavailable" in e["codes"] for log in logs for e in log if e["kind"] == "deny")
    for log in logs:
        for e in log:
            if e["kind"] == "complete" and e["outcome"] == "failed":
                for name, _, before, after in e["effects"]:
                    if name == "budget":  # a refund is the call's own amount, never another's
                        assert before - after == e["amount"]
            if e["kind"] == "refused":  # only calls whose record the flush took
                assert "unknown decision" in e["why"], e
    assert len(allowed) > 100


# ---- SQLite ---------------------------------------------------------------------------


@pytest.fixture()
def sqlite_engine(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    path = tmp_path / "state.db"
    policy = load_policy(BUDGET)
    yield Engine(policy, store=SQLiteStore(str(path), policy.sha256, timeout=0.5)), path


def test_a_deleted_sqlite_file_stops_the_engine_that_holds_it(sqlite_engine: tuple[Engine, Path]) -> None:
    engine, path = sqlite_engine
    assert send(engine, 100).allowed
    for suffix in ("", "-wal", "-shm"):
        if Path(str(path) + suffix).exists():
            os.remove(str(path) + suffix)
    denied = send(engine, 100)
    assert [r[0] for r in denied.reasons] == ["store_unavailable"] and "deleted or replaced" in denied.reasons[0][2]


def test_a_replaced_sqlite_file_stops_the_engine_that_holds_it(sqlite_engine: tuple[Engine, Path]) -> None:
    engine, path = sqlite_engine
    assert send(engine, 100).allowed
    copy = path.with_suffix(".copy")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)
    assert [r[0] for r in send(engine, 100).reasons] == ["store_unavailable"]


def test_a_damaged_sqlite_counter_is_never_used(sqlite_engine: tuple[Engine, Path]) -> None:
    engine, path = sqlite_engine
    first = send(engine, 100)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 'x1' WHERE key = 'seq'")
    db.commit()
    assert [r[0] for r in send(engine, 100).reasons] == ["store_unavailable"]
    db.execute("UPDATE meta SET value = '0' WHERE key = 'seq'")  # set back: the next number is in use
    db.commit()
    denied = send(engine, 100)
    assert [r[0] for r in denied.reasons] == ["store_unavailable"] and "already in use" in denied.reasons[0][2]
    with pytest.raises(StoreError, match="counter is damaged"):  # and no engine opens it as it is
        SQLiteStore(str(path), load_policy(BUDGET).sha256)
    assert engine.complete(first.decision_id, "failed", T0)[0] == ("budget", "", 100, 0)  # still its own call
    db.close()


def _purge_trace() -> list[dict[str, Any]]:
    """agent-7 spends its day's budget; one host ten days ahead; 300 more decisions (the
    SQLite purge runs); then agent-7 again: over budget, a replayed nonce, a retry."""
    agent7 = {"id": "agent-7", "role": "finance", "depth": 1}

    def transfer(i: int, t: int, amount: int = 5_000) -> dict[str, Any]:
        return {"tool": "payments.transfer", "args": {"amount": amount, "currency": "USD", "to": "acct_ops"},
                "nonce": f"n-{i}", "idempotency_key": f"tx-{i}", "agent": agent7, "time": t}
    lines: list[dict[str, Any]] = []
    for i in range(20):
        lines.append(transfer(i, T0 + i))
        lines.append({"complete": len(lines) - 1, "outcome": "ok", "time": T0 + i})
    lines.append({"tool": "ledger.read", "args": {"account": "acct_ops"}, "nonce": "r-0",
                  "agent": {"id": "agent-8", "role": "support", "depth": 1}, "time": T0 + 10 * 86_400})
    for i in range(300):
        lines.append({"tool": "ledger.read", "args": {"account": "acct_ops"}, "nonce": f"f-{i}",
                      "agent": {"id": "agent-9", "role": "support", "depth": 9}, "time": T0 + 30})
    lines += [transfer(100, T0 + 40), {**transfer(0, T0 + 41, 1_000), "idempotency_key": "tx-new"},
              {**transfer(0, T0 + 42), "nonce": "n-retry"}]
    return lines


def test_a_request_from_the_future_is_decided_alike_on_memory_and_sqlite(tmp_path: Path) -> None:
    policy = load_policy(EXAMPLES_PAYMENTS)
    lines = _purge_trace()
    memory = run_trace(Engine(policy), lines)
    sqlite = run_trace(Engine(policy, store=open_store(f"sqlite:///{tmp_path / 's.db'}", policy)), lines)
    assert [d.to_json() if hasattr(d, "to_json") else d for d in memory] == \
        [d.to_json() if hasattr(d, "to_json") else d for d in sqlite]
    # both decided the last three at the store's time, ten days on: a new day, old nonces and keys
    assert all(d.time == T0 + 10 * 86_400 for d in memory[-3:])


def test_with_a_clock_and_max_skew_a_time_far_ahead_is_refused_and_nothing_is_forgotten(tmp_path: Path) -> None:
    policy = load_policy(EXAMPLES_PAYMENTS)
    now = [T0]
    engine = Engine(policy, store=open_store(f"sqlite:///{tmp_path / 's.db'}", policy), clock=lambda: now[0],
                    max_skew=300)
    lines = _purge_trace()
    for line in lines:
        if "time" in line:
            now[0] = min(line["time"], T0 + 60)  # the engine's own clock runs at the real pace
    decisions = run_trace(engine, lines)
    assert [r[0] for r in decisions[40].reasons] == ["invalid_request"]  # the host ten days ahead
    last = decisions[-3:]
    assert [r[0] for r in last[0].reasons] == ["limit_exceeded"]
    assert [r[0] for r in last[1].reasons] == ["replay"]
    assert last[2].repeat


def test_a_step_redis_runs_after_the_client_gave_up_writes_nothing(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        url, policy = server.url(), load_policy(BUDGET)
        engine = Engine(policy, store=open_store(url, policy))
        assert send(engine, 100).allowed
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)  # Redis stalls with the next script in its socket buffer
        try:
            stalled = send(engine, 100)
            assert [r[0] for r in stalled.reasons] == ["store_unavailable"]
            time.sleep(1.0)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        time.sleep(0.3)  # Redis now runs the script it had received: past its deadline, it writes nothing
        admin = open_store(url, policy)
        assert json.loads(admin.client.get(admin.prefix + 'e:["budget",""]'))[0] == 100
        assert admin.client.keys(admin.prefix + "p:*") and len(admin.client.keys(admin.prefix + "p:*")) == 1
        assert send(engine, 100).allowed
    finally:
        server.stop()


def test_a_store_opened_by_a_relative_path_survives_a_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = load_policy(BUDGET)
    engine = Engine(policy, store=open_store("sqlite:///state.db", policy))
    assert send(engine, 10).allowed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the same file, only the process's directory moved
    assert send(engine, 10).allowed


# ---- a store rolled over under a running engine ----------------------------------------


def _rolled_over_under_a_running_engine(url: str, tmp_path: Path) -> None:
    """`oxdeai state rollout` (or another worker's reload) rebinds the store to the new
    version while an engine of the old one still runs: that engine decides nothing more,
    writes nothing, and says why; an engine of the new version decides."""
    old_file, new_file = tmp_path / "old.oxp", tmp_path / "new.oxp"
    old_file.write_text(BUDGET)
    new_file.write_text(BUDGET.replace('version "1"', 'version "2"').replace("<= 100_000", "<= 200_000"))
    old = Engine(load_policy(old_file), store=open_store(url, load_policy(old_file)))
    assert send(old, 10).allowed
    code, out = run_cli("state", "rollout", "--store", url, "--from", str(old_file), "--policy", str(new_file))
    assert code == 0, out
    refused = send(old, 10)
    assert [r[0] for r in refused.reasons] == ["store_unavailable"] and "now belongs to another version" in \
        refused.reasons[0][2]
    new_policy = load_policy(new_file)
    new = Engine(new_policy, store=open_store(url, new_policy))
    carried = send(new, 5)
    assert carried.allowed and carried.effects[0][2:] == (10, 15)  # the old version's 10, and nothing more
    assert [r[0] for r in send(old, 10).reasons] == ["store_unavailable"]  # still refused


def test_an_engine_whose_sqlite_store_was_rolled_over_decides_nothing_more(tmp_path: Path) -> None:
    _rolled_over_under_a_running_engine(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)


def test_an_engine_whose_redis_store_was_rolled_over_decides_nothing_more(redis_server: RedisServer,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    _rolled_over_under_a_running_engine(redis_server.url(), tmp_path)
