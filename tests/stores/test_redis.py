"""The Redis store, against a real redis-server started for the test run.

Without a `redis-server` binary these tests skip with the reason, except under
CI=true, where a missing Redis is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxdeai import load_policy
from oxdeai.runtime import redis_store
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.store_urls import open_store
from tests.conftest import ACCEPTANCE, json_lines, run_cli
from tests.stores.concurrency import CONCURRENT, T0, run_linearizable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, workdir: Path, *options: str) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.options = options  # more redis-server options, e.g. ("--maxmemory-policy", "allkeys-lru")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.workdir), *self.options],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0?prefix=t{uuid.uuid4().hex[:8]}:&timeout=0.5"


def need_redis_server() -> None:
    """Skip without a redis-server binary — but under CI=true that is a failure, never a skip."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but no redis-server is installed: .ci/run should have installed it")
        pytest.skip("no redis-server binary on this machine (install Debian's redis-server to run these tests)")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    need_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("case", ["01-payments", "08-lease", "09-refund-on-failure"])
def test_acceptance_traces_through_redis(redis_server: RedisServer, tmp_path: Path, case: str) -> None:
    expect = json.loads((ACCEPTANCE / case / "expect.json").read_text())
    for index, spec in enumerate(expect["traces"]):
        trace = tmp_path / f"t{index}.jsonl"
        trace.write_text("\n".join(json.dumps(line) for line in spec["trace"]) + "\n")
        code, out = run_cli("eval", str(ACCEPTANCE / case / "policy.oxp"), "--trace", f"@{trace}",
                            "--store", redis_server.url())
        assert code == 0, out
        for line, want in zip(json_lines(out), spec["expect"], strict=True):
            if want is not None:
                assert line["decision"] == want["decision"], (index, line, want)


def test_concurrent_processes_are_linearizable(redis_server: RedisServer, tmp_path: Path) -> None:
    run_linearizable(redis_server.url(), tmp_path, future=True)


def test_redis_stopped_mid_run_denies_then_recovers(redis_server: RedisServer) -> None:
    policy = load_policy(CONCURRENT)
    url = redis_server.url()
    engine = Engine(policy, store=open_store(url, policy))
    agent = {"agent": {"id": "a"}, "time": T0}

    def call(i: int) -> dict[str, object]:
        return {"tool": "pay.send", "args": {"amount": 1}, "nonce": f"n{i}", "idempotency_key": f"k{i}"}

    first = engine.decide(call(1), agent)
    assert first.allowed
    engine.complete(first.decision_id, "ok", T0)
    before = engine.export_state()
    redis_server.stop()
    try:
        down = engine.decide(call(2), agent)
        assert not down.allowed and [r[0] for r in down.reasons] == ["store_unavailable"]
    finally:
        redis_server.start()
    # the server restarted empty (no persistence in this test server): the budget it held is
    # gone, so the running engine refuses to decide on it ...
    lost = engine.decide(call(3), agent)
    assert not lost.allowed and "no longer holds this store's data" in lost.reasons[0][2]
    assert before["budget"]["value"] == 1
    # ... until an engine opens the store again, which starts it afresh; every engine then resumes
    Engine(policy, store=open_store(url, policy))
    assert engine.decide(call(4), agent).allowed


def test_nonces_and_records_expire(redis_server: RedisServer) -> None:
    policy = load_policy(CONCURRENT)
    store = open_store(redis_server.url(), policy)
    engine = Engine(policy, store=store)
    d = engine.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": "n", "idempotency_key": "k"},
                      {"agent": {"id": "a"}, "time": T0})
    assert d.allowed
    expiring = [key for key in store.client.scan_iter(match=store.prefix + "*")
                if key.startswith((store.prefix + "n:", store.prefix + "i:", store.prefix + 'e:["budget"',
                                   store.prefix + 'e:["rate"'))]
    assert len(expiring) == 4 and all(store.client.ttl(key) > 0 for key in expiring)
    # a concurrency count has no window: it lives until its calls complete
    assert store.client.ttl(store.prefix + 'e:["inflight",""]') == -1


def test_sigkill_leaves_redis_consistent(redis_server: RedisServer) -> None:
    import signal

    from tests.conftest import ROOT
    from tests.stores.test_sqlite import CRASHER

    url = redis_server.url()
    proc = subprocess.Popen([sys.executable, "-c", CRASHER, url], cwd=ROOT, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"running"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    policy = load_policy(CONCURRENT)
    store = open_store(url, policy)
    calls = [json.loads(store.client.get(k)) for k in store.client.scan_iter(match=store.prefix + "p:*")]
    entries = store.entries()
    assert calls
    # every recorded decision's effects are applied, and no effect is without its decision
    assert entries[("budget", "")].value == len(calls)
    assert entries[("inflight", "")].value == sum(1 for c in calls if c[5] is None)


BUDGET = """policy cached version "1"
agent { id: string }
tool pay.send(amount: int[1..1000])
limit budget on pay.send: sum args.amount <= 1_000
allow send on pay.send
"""


def _send(engine: Engine, amount: int, now: int = T0) -> list[str]:
    decision = engine.decide({"tool": "pay.send", "args": {"amount": amount}}, {"agent": {"id": "a"}, "time": now})
    return ["ALLOW"] if decision.allowed else [r[0] for r in decision.reasons]


def test_a_stale_cache_never_decides(redis_server: RedisServer) -> None:
    """Each store remembers what Redis held; the commit script refuses a step that read
    anything out of date, and the step runs again on what Redis holds now."""
    url, policy = redis_server.url(), load_policy(BUDGET)
    a = Engine(policy, store=open_store(url, policy))
    b = Engine(policy, store=open_store(url, policy))
    assert _send(b, 100) == ["ALLOW"]  # b remembers budget = 100
    assert _send(a, 800) == ["ALLOW"]  # a had never read it: its first try fails, the second sees 100
    assert _send(b, 200) == ["limit_exceeded"]  # 100 + 200 fits b's memory, not Redis's 900
    assert _send(b, 100) == ["ALLOW"]
    operator = Engine(policy, store=open_store(url, policy))
    operator.import_state({"budget": 0})  # e.g. `oxdeai state set` behind both engines' backs
    assert _send(a, 1000) == ["ALLOW"]
    assert Engine(policy, store=open_store(url, policy)).export_state() == {"budget": 1000}


def test_a_small_cache_still_decides_the_same(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_store, "CACHE_LIMIT", 3)
    url, policy = redis_server.url(), load_policy(BUDGET)
    engines = [Engine(policy, store=open_store(url, policy)) for _ in range(3)]
    answers = [_send(engines[i % 3], 7) for i in range(150)]
    assert answers.count(["ALLOW"]) == 142 and answers[142:] == [["limit_exceeded"]] * 8


LEASED = """policy leased version "1"
agent { id: string }
tool jobs.run(name: string)
limit running on jobs.*: concurrent <= 1 lease 5m
allow run on jobs.run
"""


def test_engines_share_leases(redis_server: RedisServer) -> None:
    url, policy = redis_server.url(), load_policy(LEASED)
    a = Engine(policy, store=open_store(url, policy))
    b = Engine(policy, store=open_store(url, policy))

    def run(engine: Engine, now: int) -> Any:
        return engine.decide({"tool": "jobs.run", "args": {"name": "j"}}, {"agent": {"id": "x"}, "time": now})

    first = run(a, T0)
    assert first.allowed
    assert not run(b, T0 + 10).allowed  # the slot is a's
    # b never saw a's call, yet at the deadline it expires it (Redis reports the due lease)
    assert run(b, T0 + 300).allowed
    with pytest.raises(CompletionError, match="already completed"):
        a.complete(first.decision_id, "ok", T0 + 301)


def test_undecodable_data_denies_then_recovers(redis_server: RedisServer) -> None:
    url, policy = redis_server.url(), load_policy(BUDGET)
    store = open_store(url, policy)
    engine = Engine(policy, store=store)
    assert _send(engine, 10) == ["ALLOW"]
    key = store.prefix + 'e:["budget",""]'
    store.client.set(key, "not json")
    assert _send(engine, 10) == ["store_unavailable"]
    store.client.set(key, "[10,null]")
    assert _send(engine, 10) == ["ALLOW"]
    assert engine.export_state() == {"budget": 20}


def test_a_warm_engine_decides_in_one_round_trip(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a process knows the keys a call touches, a decision and a completion are one
    commit-script call each: no reads ahead of it."""
    url, policy = redis_server.url(), load_policy(CONCURRENT)
    store = open_store(url, policy)
    engine = Engine(policy, store=store)

    def send(i: int) -> Any:
        return engine.decide({"tool": "pay.send", "args": {"amount": 1}, "nonce": f"n{i}", "idempotency_key": f"k{i}"},
                             {"agent": {"id": "a"}, "time": T0})

    engine.complete(send(0).decision_id, "ok", T0)  # learns the budget, rate and inflight entries
    scripts = store.client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
    other: list[tuple[Any, ...]] = []  # every command sent through redis-py's client API
    real = store.client.execute_command
    monkeypatch.setattr(store.client, "execute_command", lambda *args, **kw: other.append(args) or real(*args, **kw))
    for i in range(1, 11):
        decision = send(i)
        assert decision.allowed
        engine.complete(decision.decision_id, "ok", T0)
    monkeypatch.undo()
    assert other == []
    assert store.client.info("commandstats")["cmdstat_evalsha"]["calls"] - scripts == 20


def test_the_scripts_spell_absent_as_the_store_does() -> None:
    """A read of an absent key compares the scripts' literal with the store's NIL: if the
    two drifted apart, every commit after reading an absent key would look stale."""
    from oxdeai.runtime.redis_scripts import CAS_SCRIPT, NIL

    assert CAS_SCRIPT.count(f"'{NIL}'") == 2
