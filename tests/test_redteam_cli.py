"""Regression cases for the outside review's input and store-fault findings at the
edges: ambiguous JSON, `null` lines, line breaks inside strings, store URLs, damaged
stores, failing completions and values outside canonical JSON. Every case ends in a
clear answer (a DENY, an error line, or exit 2 with the reason), never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from oxdeai import load_policy
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.sqlite_store import SQLiteStore
from oxdeai.runtime.store import StoreError
from oxdeai.verifier.properties import verify_policy
from tests.conftest import EXAMPLES, json_lines, run_cli

PAYMENTS = str(EXAMPLES / "payments.oxp")
AGENT = {"id": "agent-7", "role": "finance", "depth": 1}


def transfer(amount: int, n: str, time: int = 1_764_000_000) -> dict[str, object]:
    return {"tool": "payments.transfer", "args": {"amount": amount, "currency": "USD", "to": "acct_ops"},
            "nonce": n, "idempotency_key": n, "agent": AGENT, "time": time}


@pytest.mark.parametrize("text", [
    '{"tool":"ledger.read","tool":"payments.transfer","args":{}}',
    '{"tool":"payments.transfer","args":{"amount":1,"amount":4000,"currency":"USD","to":"acct_ops"}}',
    '{"tool":"ledger.read","args":{"account":"a"},"agent":{"id":"a","id":"b"}}',
])
def test_a_repeated_key_is_refused(text: str) -> None:
    code, out = run_cli("eval", PAYMENTS, "--request", text)
    assert code == 2 and "appears twice" in out


def test_a_repeated_key_in_a_state_file_or_trace_is_refused(tmp_path: Path) -> None:
    state = '{"daily_spend": {"agent-7": 99000}, "daily_spend": {"agent-7": 0}}'
    code, out = run_cli("eval", PAYMENTS, "--request", json.dumps(transfer(10, "a")), "--state", state)
    assert code == 2 and "appears twice" in out
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps(transfer(10, "a")) + '\n{"complete":0,"outcome":"ok","outcome":"failed"}\n')
    code, out = run_cli("eval", PAYMENTS, "--trace", f"@{trace}")
    assert code == 2 and "appears twice" in out


def test_a_null_request_is_denied_in_its_place(tmp_path: Path) -> None:
    code, out = run_cli("eval", PAYMENTS, "--request", "null")
    assert code == 0 and json_lines(out)[0]["reasons"][0]["code"] == "invalid_request"
    trace = tmp_path / "t.jsonl"
    trace.write_text("null\n\n" + json.dumps(transfer(1200, "b")) + "\n")
    code, out = run_cli("eval", PAYMENTS, "--trace", f"@{trace}")
    lines = json_lines(out)
    assert code == 0 and [d["decision"] for d in lines] == ["DENY", "ALLOW"]


def test_a_trace_splits_only_on_newlines(tmp_path: Path) -> None:
    call = transfer(1200, "c")
    call["args"]["memo"] = "line\u2028sep\x0bvt\x1cfs\rcr"  # type: ignore[index]
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps(call, ensure_ascii=False) + "\r\n", encoding="utf-8")
    code, out = run_cli("eval", PAYMENTS, "--trace", f"@{trace}")
    assert code == 0 and [d["decision"] for d in json_lines(out)] == ["ALLOW"]


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:16379/0?timeout=abc", "redis://127.0.0.1:16379/0?timeout=-1",
    "redis://127.0.0.1:16379/0?timeout=nan", "redis://127.0.0.1:99999/0", "redis://[::1/0",
    "redis://127.0.0.1:16379/notadb", "sqlite:///", "postgres://x",
])
def test_a_bad_store_url_is_exit_2(url: str) -> None:
    code, out = run_cli("eval", PAYMENTS, "--store", url, "--request", "{}")
    assert code == 2 and "oxdeai: error:" in out
    code, out = run_cli("state", "show", "--store", url, "--policy", PAYMENTS)
    assert code == 2 and "oxdeai: error:" in out


def test_a_state_file_the_store_cannot_hold_is_refused_the_same_on_every_store(tmp_path: Path) -> None:
    request = json.dumps(transfer(10, "d"))
    for store in ("memory://", f"sqlite:///{tmp_path / 's.db'}"):
        for state in ('{"daily_spend": {"\\ud800": 5}}', '{"daily_spend": {"agent-7": 9007199254740992}}'):
            code, out = run_cli("eval", PAYMENTS, "--store", store, "--request", request, "--state", state)
            assert code == 2 and "does not fit" in out, (store, state, out)


def damaged_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    at = data.index(b"CREATE TABLE pending (") + len(b"CREATE TABLE pending (")
    data[at:at + 2] = b"`\xf9"  # an unclosed quote, then a byte that is not UTF-8
    path.write_bytes(bytes(data))


def test_a_damaged_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    assert run_cli("eval", PAYMENTS, "--store", url, "--request", json.dumps(transfer(10, "e")))[0] == 0
    damaged_schema(path)
    for args in (["eval", PAYMENTS, "--store", url, "--request", json.dumps(transfer(10, "f"))],
                 ["state", "show", "--store", url, "--policy", PAYMENTS]):
        code, out = run_cli(*args)
        assert code == 2 and "cannot open the SQLite store" in out


def test_an_entry_that_does_not_decode_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite:///{path}"
    run_cli("eval", PAYMENTS, "--store", url, "--request", json.dumps(transfer(10, "g")))
    db = sqlite3.connect(path)
    db.execute("UPDATE entries SET value = 'xx' WHERE name = 'daily_spend'")
    db.commit()
    db.close()
    code, out = run_cli("eval", PAYMENTS, "--store", url, "--request", json.dumps(transfer(10, "h", 1_764_000_001)))
    assert code == 0 and json_lines(out)[0]["reasons"][0]["code"] == "store_unavailable"
    for command in ("show", "export"):
        code, out = run_cli("state", command, "--store", url, "--policy", PAYMENTS)
        assert code == 2 and "cannot be read" in out


def test_complete_on_a_failing_store_raises_a_completion_error_and_changes_nothing(tmp_path: Path) -> None:
    policy = load_policy(PAYMENTS)
    path = tmp_path / "state.db"
    store = SQLiteStore(str(path), policy.sha256, timeout=0.2)
    engine = Engine(policy, store=store)
    call = transfer(1200, "i")
    decision = engine.decide({k: v for k, v in call.items() if k not in ("agent", "time")},
                             {"agent": AGENT, "time": call["time"]})
    assert decision.allowed
    before = engine.export_state()
    blocker = sqlite3.connect(path, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CompletionError) as caught:
            engine.complete(decision.decision_id, "failed", 1_764_000_010)
        assert isinstance(caught.value, StoreError) and "state store failed" in str(caught.value)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert engine.export_state() == before
    assert engine.complete(decision.decision_id, "failed", 1_764_000_010)  # the retry applies it once


def test_a_write_outside_the_json_domain_is_denied_and_the_verifier_knows() -> None:
    source = ("policy big\ntool add(n: int[0..9_007_199_254_740_991])\nstate total: int = 0\n"
              "effect on add: total += args.n\nallow a on add\n"
              "assert small_adds: always allow add when args.n <= 1\n")
    engine = Engine(load_policy(source))
    first = engine.decide({"tool": "add", "args": {"n": 9_007_199_254_740_991}}, {"agent": {}, "time": 0})
    second = engine.decide({"tool": "add", "args": {"n": 1}}, {"agent": {}, "time": 0})
    assert first.allowed and not second.allowed
    assert [r[0] for r in second.reasons] == ["state_out_of_range"]
    (result,) = verify_policy(load_policy(source), 30.0)
    assert result.status == "violated"  # the engine refuses it at the edge of the domain, and verify says so


def test_times_and_values_outside_the_json_domain_never_reach_the_store(tmp_path: Path) -> None:
    engine = Engine(load_policy(PAYMENTS))
    call = transfer(10, "z")
    decision = engine.decide({k: v for k, v in call.items() if k not in ("agent", "time")},
                             {"agent": AGENT, "time": call["time"]})
    for bad in (2**64 + 1, -1, True):
        with pytest.raises(CompletionError, match="time must be"):
            engine.complete(decision.decision_id, "ok", bad)  # type: ignore[arg-type]
    code, out = run_cli("state", "set", "--store", f"sqlite:///{tmp_path / 'state.db'}", "--policy", PAYMENTS,
                        "daily_spend", "agent-7", "5", "--time", str(2**64))
    assert code == 2 and "write time" in out
