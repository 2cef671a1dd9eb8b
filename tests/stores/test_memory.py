"""The memory store stays bounded in a long-running process, forgetting only what no
later step can read, exactly as the durable stores do."""

from __future__ import annotations

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.store import CALL_TTL, MemoryStore
from tests.conftest import EXAMPLES

AGENT = {"id": "agent-7", "role": "finance", "depth": 1}
T0 = 1_764_000_000


def test_a_long_run_stays_bounded_and_forgets_nothing_live() -> None:
    engine = Engine(load_policy(EXAMPLES / "payments.oxp"))
    store = engine.store
    assert isinstance(store, MemoryStore)
    sizes = []
    now = T0
    for i in range(40_000):
        now = T0 + i * 60  # one call a minute: 40,000 minutes is about 28 days
        call = {"tool": "payments.transfer", "args": {"amount": 10, "currency": "USD", "to": "acct_ops"},
                "nonce": f"n{i}", "idempotency_key": f"k{i}"}
        decision = engine.decide(call, {"agent": AGENT, "time": now})
        assert decision.allowed, decision.reasons
        engine.complete(decision.decision_id, "ok" if i % 2 else "failed", now)
        if i % 10_000 == 9_999:
            sizes.append(store.size())
    assert sizes[-1] <= sizes[1] * 1.05  # level after the 7-day horizon, not growing with each call
    # what is still live is remembered: a nonce within its window, a retry within its window
    replay = {"tool": "payments.transfer", "args": {"amount": 11, "currency": "USD", "to": "acct_ops"},
              "nonce": "n39999", "idempotency_key": "fresh"}
    assert [r[0] for r in engine.decide(replay, {"agent": AGENT, "time": now}).reasons] == ["replay"]
    retry = {"tool": "payments.transfer", "args": {"amount": 10, "currency": "USD", "to": "acct_ops"},
             "nonce": "again", "idempotency_key": "k39999"}
    assert engine.decide(retry, {"agent": AGENT, "time": now}).repeat


def test_only_allowed_calls_are_remembered_and_completion_errors_read_alike_on_every_store() -> None:
    engine = Engine(load_policy(EXAMPLES / "payments.oxp"))
    denied = engine.decide({"tool": "payments.transfer", "args": {"amount": 900_000, "currency": "USD",
                                                                  "to": "acct_ops"}, "nonce": "x",
                            "idempotency_key": "x"}, {"agent": AGENT, "time": T0})
    assert not denied.allowed
    try:
        engine.complete(denied.decision_id, "ok", T0)
    except CompletionError as exc:
        assert "unknown decision" in str(exc)  # the wording SQLite and Redis give
    else:
        raise AssertionError("a denied call cannot be completed")
    assert engine.store.size() < 10  # type: ignore[attr-defined]


def test_a_finished_call_is_forgotten_after_the_horizon_and_is_then_unknown() -> None:
    engine = Engine(load_policy(EXAMPLES / "payments.oxp"))
    first = engine.decide({"tool": "ledger.read", "args": {"account": "a"}, "nonce": "r0"},
                          {"agent": AGENT, "time": T0})
    first_id = first.decision_id
    engine.complete(first_id, "ok", T0)
    for i in range(1, MemoryStore.PURGE_EVERY + 2):  # enough commits for a purge, past the horizon
        engine.decide({"tool": "ledger.read", "args": {"account": "a"}, "nonce": f"r{i}"},
                      {"agent": AGENT, "time": T0 + CALL_TTL + 60 + 3 * i})
    try:
        engine.complete(first_id, "ok", T0 + CALL_TTL + 20_000)
    except CompletionError as exc:
        assert "unknown decision" in str(exc)
    else:
        raise AssertionError("a call past the horizon is forgotten")
