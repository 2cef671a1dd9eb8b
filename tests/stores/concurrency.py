"""Many engine processes against one store: the run must be linearizable."""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path
from typing import Any

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.store_urls import open_store

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


FUTURE = 10 * 86_400  # how far ahead the one request from a host with a wrong clock is


def _worker(url: str, worker: int, count: int, out: str, future: bool = False) -> None:
    policy = load_policy(CONCURRENT)
    engine = Engine(policy, store=open_store(url, policy))
    rng = random.Random(worker)
    agent = {"id": f"w{worker}"}
    events: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    outstanding: list[tuple[str, int]] = []
    for i in range(count):
        now = T0 + i // 10
        if future and i >= count // 2:  # from its middle on, one host's clock is ten days ahead
            # (every one of its requests: the first that is allowed moves the store's clock,
            # and a single one could be denied by the in-flight cap, moving nothing)
            now += FUTURE
        if outstanding and (rng.random() < 0.5 or len(outstanding) > 1):
            decision_id, seq = outstanding.pop(0)
            outcome = rng.choice(["ok", "failed"])
            try:
                effects = engine.complete(decision_id, outcome, now)
                events.append({"kind": "complete", "event": engine.last_completion_event, "of": seq,
                               "outcome": outcome, "time": now, "effects": [list(e) for e in effects]})
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
                       "decided_at": decision.time, "allowed": decision.allowed, "repeat": decision.repeat,
                       "inflight": inflight, "codes": [r[0] for r in decision.reasons]})
        if decision.allowed and not decision.repeat:
            outstanding.append((decision.decision_id, decision.seq))
    Path(out).write_text(json.dumps({"agent": agent, "events": events}))


def run_linearizable(url: str, tmp_path: Path, workers: int = 8, count: int = 2_000, future: bool = False) -> None:
    """`workers` processes x `count` decisions with retries, replays and completions; then
    the same events one at a time, in the store's order, must give the same answers.
    `future`: worker 0's requests from its middle on carry a time ten days ahead; the store's clock
    moves there for every engine, and nothing is overspent or accepted twice in any window."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(url, w, count, str(tmp_path / f"w{w}.json"), future and w == 0))
             for w in range(workers)]
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
    for field in ("nonce", "idempotency_key"):  # never accepted twice within its window (1 h)
        last: dict[tuple[str, str], int] = {}
        for e, a in decided:
            scope = (a["id"], e["call"][field])
            assert scope not in last or e["decided_at"] - last[scope] > 3_600, (field, scope)
            last[scope] = e["decided_at"]
    spent: dict[int, int] = {}  # the daily budget, per day the store decided in
    seq_amount = {e["seq"]: (e["call"]["args"]["amount"], e["decided_at"] // 86_400) for e, _ in decided}
    for e, _ in decided:
        day = e["decided_at"] // 86_400
        spent[day] = spent.get(day, 0) + e["call"]["args"]["amount"]
    for e, _ in events:
        if e["kind"] == "complete" and e["outcome"] == "failed":
            amount, day = seq_amount[e["of"]]
            for name, _, before, after in e["effects"]:
                if name == "budget":  # a refund gives back exactly the failed call's own amount
                    assert before - after == amount
                    spent[day] -= amount
    assert all(total <= 5_000 for total in spent.values()), spent
    if future:
        assert len(spent) == 2  # the store's clock moved ahead once, for every engine
    final = Engine(load_policy(CONCURRENT), store=open_store(url, load_policy(CONCURRENT))).export_state()
    assert final["budget"]["value"] <= 5_000 and final["budget"]["value"] == serial.export_state()["budget"]["value"]


