"""Regression cases for the outside review's time, completion and lease findings: the
verifier proves a property, and the engine must then keep it on the trace that broke it.

Each case states the property the way the review did, runs `verify`, runs the trace
through the engine, and checks the property on the state the engine then holds."""

from __future__ import annotations

from typing import Any

from oxdeai import load_policy
from oxdeai.runtime.engine import Engine
from oxdeai.verifier.properties import verify_policy
from tests.conftest import run_trace as run


def statuses(source: str) -> dict[str, str]:
    return {r.property: r.status for r in verify_policy(load_policy(source), 10.0)}


def values(engine: Engine, names: list[str], at: int) -> dict[str, Any]:
    """What a request at `at` reads for unkeyed states (a probe decision's own view)."""
    decision = engine.decide({"tool": "peek", "args": {}}, {"agent": {"id": "x"}, "time": at})
    assert decision.allowed, decision.reasons
    return {name: decision.touched[(name, "")] for name in names}


DAY, HOUR = 86_400, 3_600

BACKWARDS = """policy back version "1"
agent { id: string }
state a: bool = false every 1d
state b: bool = false every 1d
tool seta()
tool setb()
tool danger()
tool peek()
effect on seta: a = true
effect on setb: b = true
allow sa on seta when not b
allow sb on setb when not a
allow d on danger
allow look on peek when a == a and b == b
invariant excl: not (a and b)
assert never_both: never allow danger when a and b
"""


def test_host_time_going_backwards_is_decided_at_the_store_time() -> None:
    assert statuses(BACKWARDS) == {"excl": "proved", "never_both": "proved"}
    engine = Engine(load_policy(BACKWARDS))
    agent = {"id": "x"}
    day100, day101 = 100 * DAY + 10, 101 * DAY + 10
    seen = run(engine, [{"tool": "setb", "args": {}, "agent": agent, "time": day100},
                        {"tool": "seta", "args": {}, "agent": agent, "time": day101},
                        {"tool": "danger", "args": {}, "agent": agent, "time": day100 + 10}])
    assert [d.allowed for d in seen] == [True, True, True]
    assert seen[2].time == day101  # the decision records the time it was decided at
    state = values(engine, ["a", "b"], day100 + 20)
    assert not (state["a"] and state["b"])
    assert not engine.decide({"tool": "setb", "args": {}}, {"agent": agent, "time": day100 + 30}).allowed


COMPLETION = """policy comp version "1"
state a: int = 0 every 1d
state b: int = 0 every 1h
tool x(n: int[0..10])
tool y(n: int[0..10])
tool peek()
effect on x: b += args.n
effect on y: a += args.n
effect on complete x: a += b, b = 0
allow ox on x when a + b + args.n <= 10
allow oy on y when a + b + args.n <= 10
allow look on peek when a + b > -1_000_000
invariant cap: a >= 0 and b >= 0 and a + b <= 10
assert peek_under_cap: never allow peek when a + b > 10
"""


def test_a_completion_in_a_later_window_is_dropped_whole() -> None:
    assert statuses(COMPLETION) == {"cap": "proved", "peek_under_cap": "proved"}
    hour1 = 100 * HOUR + 5
    # mixed windows: the hourly `b` has rolled over when the hour-1 call completes in hour 2
    for trace in ([{"tool": "x", "args": {"n": 0}, "time": hour1},
                   {"tool": "x", "args": {"n": 10}, "time": hour1 + HOUR},
                   {"complete": 0, "outcome": "ok", "time": hour1 + HOUR + 5}],
                  [{"tool": "x", "args": {"n": 5}, "time": hour1},
                   {"tool": "y", "args": {"n": 10}, "time": hour1 + HOUR},
                   {"complete": 0, "outcome": "ok", "time": hour1 + HOUR + 5}]):
        engine = Engine(load_policy(COMPLETION))
        seen = run(engine, trace)
        assert seen[2] == ()  # nothing applied: one of its states' windows has passed
        state = values(engine, ["a", "b"], hour1 + HOUR + 10)
        assert state["a"] + state["b"] <= 10, state


def test_a_completion_in_the_call_window_reads_and_writes_the_current_entries() -> None:
    engine = Engine(load_policy(COMPLETION))
    seen = run(engine, [{"tool": "x", "args": {"n": 4}, "time": 10},
                        {"tool": "y", "args": {"n": 3}, "time": 20},
                        {"complete": 0, "outcome": "ok", "time": 30}])
    assert sorted(seen[2]) == [("a", "", 3, 7), ("b", "", 4, 0)]
    assert values(engine, ["a", "b"], 40) == {"a": 7, "b": 0}


SAME_STEP_EXPIRY = """policy guardstale version "1"
state used: int = 0
tool job()
tool spend()
limit inflight on job: concurrent <= 1 lease 10s
effect on spend: used += 1
allow j on job when used == 0
allow s on spend when inflight <= 0
invariant excl: inflight <= 0 or used == 0
assert spend_ok: always allow spend when inflight == 0 and used < 1_000_000
"""


def test_the_guard_sees_a_lease_that_expired_in_the_same_step() -> None:
    assert statuses(SAME_STEP_EXPIRY)["spend_ok"] == "proved"
    engine = Engine(load_policy(SAME_STEP_EXPIRY))
    seen = run(engine, [{"tool": "job", "args": {}, "time": 1000}, {"tool": "spend", "args": {}, "time": 1020}])
    assert [d.allowed for d in seen] == [True, True], seen[1].reasons


def test_time_never_runs_backwards_for_completions_and_operator_writes() -> None:
    engine = Engine(load_policy(COMPLETION))
    run(engine, [{"tool": "x", "args": {"n": 4}, "time": 5 * HOUR}])
    engine.set_entry("a", "", 2, 0)  # an operator's write stamped in the past lands at the store's time
    assert values(engine, ["a"], 0) == {"a": 2}
    assert engine.decide({"tool": "peek", "args": {}}, {"agent": {}, "time": 0}).time == 5 * HOUR
