"""The decision engine: every stage, reason code and boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.state_files import StateFileError
from tests.conftest import ROOT

POLICY = """policy shop version "7"
agent { id: string, role: "buyer" | "admin", level: int[0..3] = 0 }
tool shop.buy(item: string, price: int[0..10_000], qty: int[1..10] = 1, gift: bool = false)
tool shop.note(text: string)
tool ops.run(job: string)
state halted: bool = false
state spent: int = 0 per agent.id every 1d
state pair: int = 0 per (agent.id, args.item) every 1h
invariant spent_cap: spent <= 1_000
effect on shop.buy: spent += args.price * 1, pair += 1
effect on complete shop.buy when outcome == "failed": spent -= args.price
limit buys on shop.buy: count per agent.id every 1m <= 3
limit running on ops.run: concurrent per agent.id <= 1 lease 60s
allow buy on shop.buy when args.item != "" and len(args.item) <= 5
allow admin_buy on shop.buy when agent.role == "admin"
allow note on shop.note when args.text matches "[a-z\\u{e9} ]*"
allow run on ops.run
deny stop on * when halted because "halted by operator"
deny expensive on shop.buy when args.price > 900 because "too expensive"
idempotent on shop.buy within 1h
require nonce within 5m
"""

T0 = 1_764_000_000 - 1_764_000_000 % 86_400 + 3_600  # 01:00 UTC on a day boundary + 1h
AGENT = {"id": "a1", "role": "buyer"}


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


_counter = iter(range(10**9))


def make(**kw: Any) -> Engine:
    return Engine(load_policy(POLICY), clock=Clock(), **kw)


def buy(engine: Engine, t: int = T0, agent: dict[str, Any] | None = None, key: str | None = None,
        nonce: str | None = None, **args: Any) -> Any:
    call = {"tool": "shop.buy", "args": {"item": "tea", "price": 10, **args},
            "nonce": nonce or f"n{next(_counter)}", "idempotency_key": key or f"k{next(_counter)}"}
    return engine.decide(call, {"agent": agent or AGENT, "time": t})


def codes(decision: Any) -> list[str]:
    return [r[0] for r in decision.reasons]


# ---- stage 1: schema ------------------------------------------------------------


@pytest.mark.parametrize("args,field", [
    ({"item": "tea"}, "args.price"),
    ({"item": "tea", "price": 10, "extra": 1}, "args.extra"),
    ({"item": 5, "price": 10}, "args.item"),
    ({"item": "tea", "price": -1}, "args.price"),
    ({"item": "tea", "price": 10_001}, "args.price"),
    ({"item": "tea", "price": True}, "args.price"),
    ({"item": "tea", "price": 10.0}, "args.price"),
    ({"item": "tea\ud800", "price": 10}, "args.item"),
    ({"item": "x" * 70_000, "price": 10}, "args.item"),
    ({"item": "tea", "price": 10, "gift": "yes"}, "args.gift"),
])
def test_invalid_args(args: dict[str, Any], field: str) -> None:
    d = make().decide({"tool": "shop.buy", "args": args, "nonce": "n", "idempotency_key": "k"},
                      {"agent": AGENT, "time": T0})
    assert not d.allowed and codes(d) == ["invalid_request"] * len(d.reasons)
    assert field in [r[1] for r in d.reasons]


def test_range_ends_are_valid() -> None:
    engine = make()
    assert buy(engine, price=0).allowed
    assert not buy(engine, price=10_000).allowed  # valid, but denied by rule
    assert codes(buy(engine, price=10_000)) == ["denied_by_rule"]


@pytest.mark.parametrize("call,context,field", [
    ({"tool": "shop.nope", "args": {}}, {"agent": AGENT, "time": T0}, "tool"),
    ({"tool": 3, "args": {}}, {"agent": AGENT, "time": T0}, "tool"),
    ({"tool": "shop.note", "args": []}, {"agent": AGENT, "time": T0}, "args"),
    ({"tool": "shop.note", "args": {"text": "a"}}, {"agent": {"id": "a1", "role": "root"}, "time": T0}, "agent.role"),
    ({"tool": "shop.note", "args": {"text": "a"}}, {"agent": {"role": "buyer"}, "time": T0}, "agent.id"),
    ({"tool": "shop.note", "args": {"text": "a"}}, {"agent": AGENT, "time": -5}, "time"),
    ({"tool": "shop.note", "args": {"text": "a"}}, {"agent": AGENT, "time": 2**60}, "time"),
    ({"tool": "shop.note", "args": {"text": "a"}, "agent": AGENT}, {"agent": AGENT, "time": T0}, "agent"),
    ({"tool": "shop.note", "args": {"text": "a"}, "nonce": 5}, {"agent": AGENT, "time": T0}, "nonce"),
])
def test_invalid_request_names_field(call: Any, context: Any, field: str) -> None:
    d = make().decide(call, context)
    assert "invalid_request" in codes(d)
    assert field in [r[1] for r in d.reasons]


def test_undeclared_agent_fields_are_ignored_and_defaults_fill() -> None:
    d = make().decide({"tool": "shop.note", "args": {"text": "hi"}, "nonce": "n"},
                      {"agent": {**AGENT, "team": "x"}, "time": T0})
    assert d.allowed


# ---- stages 2-3: idempotency and replay --------------------------------------------


def test_idempotency_key_required_and_repeat_and_conflict() -> None:
    engine = make()
    d = engine.decide({"tool": "shop.buy", "args": {"item": "tea", "price": 5}, "nonce": "x"},
                      {"agent": AGENT, "time": T0})
    assert codes(d) == ["idempotency_key_required"]
    first = buy(engine, key="K", price=5)
    again = buy(engine, key="K", price=5, t=T0 + 10)
    assert first.allowed and again.allowed and again.repeat and again.effects == ()
    assert again.decision_id == first.decision_id
    assert engine.export_state()["spent"]["a1"]["value"] == 5
    assert codes(buy(engine, key="K", price=6)) == ["idempotency_conflict"]
    # scoped per agent: another agent may use the same key
    assert buy(engine, key="K", price=6, agent={"id": "a2", "role": "buyer"}).allowed
    # the window passes: the key is decided afresh
    assert not buy(engine, key="K", price=5, t=T0 + 3_601).repeat


def test_repeat_still_obeys_a_kill_switch() -> None:
    engine = make()
    assert buy(engine, key="K").allowed
    engine.import_state({"halted": True})
    assert codes(buy(engine, key="K")) == ["denied_by_rule"]


def test_denied_calls_are_not_remembered_by_idempotency() -> None:
    engine = make()
    assert codes(buy(engine, key="K", price=950)) == ["denied_by_rule"]
    assert buy(engine, key="K", price=5).allowed


def test_nonce_required_replay_and_window() -> None:
    engine = make()
    note = {"tool": "shop.note", "args": {"text": "hi"}}
    assert codes(engine.decide(note, {"agent": AGENT, "time": T0})) == ["nonce_required"]
    assert engine.decide({**note, "nonce": "n"}, {"agent": AGENT, "time": T0}).allowed
    assert codes(engine.decide({**note, "nonce": "n"}, {"agent": AGENT, "time": T0 + 300})) == ["replay"]
    assert engine.decide({**note, "nonce": "n"}, {"agent": {"id": "b", "role": "buyer"}, "time": T0}).allowed
    assert engine.decide({**note, "nonce": "n"}, {"agent": AGENT, "time": T0 + 301}).allowed


def test_nonce_of_a_denied_call_is_not_recorded() -> None:
    engine = make()
    bad = {"tool": "shop.note", "args": {"text": "NO"}, "nonce": "n"}
    assert codes(engine.decide(bad, {"agent": AGENT, "time": T0})) == ["no_matching_rule"]
    assert engine.decide({**bad, "args": {"text": "ok"}}, {"agent": AGENT, "time": T0}).allowed


# ---- stages 4-9 ------------------------------------------------------------------


def test_rules_deny_first_and_list_every_match() -> None:
    engine = make()
    engine.import_state({"halted": True})
    d = buy(engine, price=950)
    assert codes(d) == ["denied_by_rule", "denied_by_rule"]
    assert [r[1] for r in d.reasons] == ["stop", "expensive"]
    assert d.reasons[0][2] == "halted by operator"


def test_allowed_by_lists_every_allow_rule_in_order() -> None:
    d = buy(make(), agent={"id": "z", "role": "admin"})
    assert d.allowed_by == ("buy", "admin_buy")


def test_no_matching_rule_for_empty_string_and_unicode() -> None:
    engine = make()
    assert codes(buy(engine, item="")) == ["no_matching_rule"]
    assert buy(engine, item="\u00e9\u00e9\u00e9\u00e9\u00e9").allowed  # 5 code points
    assert codes(buy(engine, item="\u00e9" * 6)) == ["no_matching_rule"]
    note = {"tool": "shop.note", "args": {"text": "caf\u00e9"}, "nonce": "u"}
    assert engine.decide(note, {"agent": AGENT, "time": T0}).allowed
    note = {"tool": "shop.note", "args": {"text": "caf\u00c9"}, "nonce": "v"}
    assert not engine.decide(note, {"agent": AGENT, "time": T0}).allowed


def test_rate_limit_gate_and_window_edge() -> None:
    engine = make()
    minute = T0 - T0 % 60
    for i in range(3):
        assert buy(engine, t=minute + 59, item=f"i{i}").allowed
    d = buy(engine, t=minute + 59)
    assert codes(d) == ["limit_exceeded"] and d.reasons[0][1] == "buys"
    assert buy(engine, t=minute + 60).allowed


def test_daily_window_resets_and_time_never_runs_backwards() -> None:
    engine = make()
    day_end = T0 - T0 % 86_400 + 86_399
    assert buy(engine, t=day_end, price=900, item="a").allowed
    assert codes(buy(engine, t=day_end, price=200, item="b")) == ["invariant_guard"]
    assert buy(engine, t=day_end + 1, price=200, item="c").allowed
    # a host going back to yesterday reads the entry's current (today's) window
    d = buy(engine, t=day_end - 5, price=850, item="d")
    assert codes(d) == ["invariant_guard"]


def test_invariant_guard_names_the_invariant_and_leaves_state_alone() -> None:
    engine = make()
    engine.import_state({"spent": {"a1": 995}}, T0)
    before = engine.export_state()
    d = buy(engine, price=10)
    assert codes(d) == ["invariant_guard"] and d.reasons[0][1] == "spent_cap"
    assert engine.export_state() == before


def test_effects_apply_at_once_with_compound_keys() -> None:
    engine = make()
    d = buy(engine, price=7, item="tea")
    assert {(s, k): (b, a) for s, k, b, a in d.effects} == {
        ("spent", "a1"): (0, 7), ("pair", '["a1","tea"]'): (0, 1), ("buys", "a1"): (0, 1)}
    state = engine.export_state()
    assert state["pair"]['["a1","tea"]']["value"] == 1


def test_on_complete_failed_refunds_and_ok_does_not() -> None:
    engine = make()
    first = buy(engine, price=100)
    engine.complete(first.decision_id, "failed", T0 + 5)
    assert engine.export_state()["spent"]["a1"]["value"] == 0
    second = buy(engine, price=100, t=T0 + 6)
    assert engine.complete(second.decision_id, "ok", T0 + 7) == ()
    assert engine.export_state()["spent"]["a1"]["value"] == 100


def test_on_complete_is_dropped_after_the_window_passes() -> None:
    engine = make()
    d = buy(engine, price=100)
    assert engine.complete(d.decision_id, "failed", T0 + 86_400) == ()


def test_completion_errors_change_nothing() -> None:
    engine = make()
    denied = buy(engine, price=950)
    with pytest.raises(CompletionError):
        engine.complete(denied.decision_id, "ok", T0)
    with pytest.raises(CompletionError):
        engine.complete("d_nope", "ok", T0)
    allowed = buy(engine)
    with pytest.raises(CompletionError):
        engine.complete(allowed.decision_id, "expired", T0)
    engine.complete(allowed.decision_id, "ok", T0)
    state = engine.export_state()
    with pytest.raises(CompletionError):
        engine.complete(allowed.decision_id, "failed", T0)
    assert engine.export_state() == state


def test_a_completion_from_another_agent_is_refused_and_changes_nothing() -> None:
    engine = make()
    d = buy(engine, price=100)
    state = engine.export_state()
    with pytest.raises(CompletionError, match="made for another agent"):
        engine.complete(d.decision_id, "failed", T0 + 1, agent={"id": "a2", "role": "buyer"})
    assert engine.export_state() == state  # no refund for the impostor
    engine.complete(d.decision_id, "failed", T0 + 1, agent={**AGENT, "undeclared": "ignored"})
    assert engine.export_state()["spent"]["a1"]["value"] == 0


def test_concurrency_lease_expires_at_first_event_after_it() -> None:
    engine = make()
    run = {"tool": "ops.run", "args": {"job": "j"}}

    def go(t: int) -> Any:
        return engine.decide({**run, "nonce": f"r{t}"}, {"agent": AGENT, "time": t})

    first = go(T0)
    assert first.allowed
    assert codes(go(T0 + 59)) == ["limit_exceeded"]
    assert go(T0 + 60).allowed  # lease passed: the first call completed as expired
    with pytest.raises(CompletionError, match="expired"):
        engine.complete(first.decision_id, "ok", T0 + 61)


def test_host_time_skew_is_refused() -> None:
    engine = make(max_skew=30)
    d = buy(engine, t=T0 + 31)
    assert codes(d) == ["invalid_request"] and d.reasons[0][1] == "time"
    assert buy(engine, t=T0 + 30).allowed


def test_clock_supplies_time_when_host_gives_none() -> None:
    engine = make()
    d = engine.decide({"tool": "shop.note", "args": {"text": "a"}, "nonce": "c"}, {"agent": AGENT})
    assert d.allowed and d.time == T0


def test_decision_ids_are_unique() -> None:
    engine = make()
    ids = {buy(engine, item="t").decision_id for _ in range(3)}
    assert len(ids) == 3


def test_state_file_errors() -> None:
    engine = make()
    for bad in ({"nope": 1}, {"spent": 5}, {"halted": 1}, {"pair": {"a1": 1}}, {"spent": {"a": {"value": 1}}}, []):
        with pytest.raises(StateFileError):
            engine.import_state(bad)
    engine.import_state({"pair": {'[ "a1", "tea" ]': 2}})
    assert engine.export_state()["pair"] == {'["a1","tea"]': 2}


def test_decision_json_shape() -> None:
    d = json.loads(buy(make()).to_json())
    assert set(d) >= {"decision", "allowed", "reasons", "allowed_by", "effects", "decision_id", "policy",
                      "request_hash", "state_hash", "time", "tool"}
    assert d["policy"]["name"] == "shop" and d["policy"]["version"] == "7" and len(d["policy"]["sha256"]) == 64


# ---- determinism -------------------------------------------------------------------

SCRIPT = """
import sys
from oxdeai import load_policy
from oxdeai.runtime.engine import Engine
from tests.test_engine import POLICY, T0, AGENT
engine = Engine(load_policy(POLICY), clock=lambda: T0)
for i in range(6):
    call = {"tool": "shop.buy", "args": {"item": "t" + str(i % 2), "price": 100 * i},
            "nonce": str(i), "idempotency_key": str(i % 3)}
    sys.stdout.buffer.write(engine.decide(call, {"agent": AGENT, "time": T0 + i}).to_json() + b"\\n")
"""


def test_same_bytes_across_processes_and_hash_seeds() -> None:
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, check=True)
        outputs.add(done.stdout)
    assert len(outputs) == 1 and outputs.pop().count(b"\n") == 6


# ---- fail closed ---------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


def _mutated_call(draw: st.DrawFn) -> Any:
    base: dict[str, Any] = {"tool": draw(st.sampled_from(["shop.buy", "shop.note", "ops.run", "x"])),
                            "args": {"item": "tea", "price": 10, "text": "a", "job": "j"},
                            "nonce": "n", "idempotency_key": "k"}
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(["top", "args"]))
        key = draw(st.sampled_from(["tool", "args", "nonce", "idempotency_key", "item", "price", "text", "qty",
                                    "gift", "zzz"]))
        where = base if target == "top" or not isinstance(base.get("args"), dict) else base["args"]
        if draw(st.booleans()):
            where.pop(key, None)
        else:
            huge = st.sampled_from(["x" * 70_000, "\U0001F600" * 20_000, "a\ud800b"])
            where[key] = draw(json_values | huge)
    return base


calls = st.composite(_mutated_call)()


@settings(max_examples=300, deadline=None)
@given(calls, json_values, st.sampled_from([{"agent": AGENT, "time": T0}, None, {"agent": []}, {"time": "x"}]))
def test_arbitrary_input_never_raises_and_denies_change_nothing(call: Any, junk: Any, context: Any) -> None:
    engine = make()
    buy(engine)  # some state to protect
    before = engine.export_state()
    for candidate in (call, junk):
        d = engine.decide(candidate, context)
        assert d.decision in ("ALLOW", "DENY")
        if not d.allowed:
            assert d.reasons and all(r[0] for r in d.reasons)
            assert engine.export_state() == before
            assert "internal_error" not in codes(d)
        json.loads(d.to_json())
        before = engine.export_state()


@settings(max_examples=300, deadline=None)
@given(calls, st.sampled_from([{"agent": AGENT, "time": T0}, {"agent": {"id": "a", "role": "admin", "level": 3}},
                               {"agent": {"id": "a", "role": "admin", "level": 4}}, {"agent": {"role": "buyer"}}]))
def test_fast_schema_path_agrees_with_pydantic(call: Any, context: Any) -> None:
    schema = make().schema
    fast = schema.validate_fast(call, context, T0)
    slow = schema.validate_slow(call, context, T0)
    if fast is not None:
        assert not isinstance(slow, list) and fast == slow
    elif not isinstance(slow, list):  # the fast path may decline, but only for inputs it does not handle
        assert not isinstance(call.get("args"), dict) or "args" not in call


def test_an_engine_failure_is_a_deny_never_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make()
    before = engine.export_state()

    def broken(*args: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "_rules", broken)
    d = buy(engine)
    assert not d.allowed and codes(d) == ["internal_error"]
    assert engine.export_state() == before
    json.loads(d.to_json())


def test_a_refused_completion_still_applies_due_lease_expiries() -> None:
    engine = make()
    run = {"tool": "ops.run", "args": {"job": "j"}}
    assert engine.decide({**run, "nonce": "a"}, {"agent": AGENT, "time": T0}).allowed
    denied = engine.decide({**run, "nonce": "b"}, {"agent": AGENT, "time": T0 + 1})
    assert codes(denied) == ["limit_exceeded"]
    with pytest.raises(CompletionError):
        engine.complete(denied.decision_id, "ok", T0 + 61)  # the first event after the lease: it expires the call
    assert engine.decide({**run, "nonce": "c"}, {"agent": AGENT, "time": T0 + 62}).allowed
