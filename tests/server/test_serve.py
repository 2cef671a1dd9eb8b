"""`oxdeai serve` for real: uvicorn on a loopback port, the HTTP client httpx."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from oxdeai.runtime.models import canonical_json
from tests.conftest import EXAMPLES
from tests.server.conftest import FREE, PRO, Served


def _charge(served: Served, headers: dict[str, str], amount: int, **extra: Any) -> Any:
    return served.decide(headers, tool="pay.charge", args={"amount": amount, "to": "acct"},
                         nonce=uuid.uuid4().hex, idempotency_key=uuid.uuid4().hex, **extra)


def test_the_credential_is_the_identity_never_the_body(served: Served) -> None:
    mail = {"tool": "mail.send", "args": {"to": "ann@customer.example"}}
    assert served.decide(PRO, **mail, nonce="m1").json()["decision"] == "ALLOW"
    assert served.decide(FREE, **mail, nonce="m2").json()["decision"] == "DENY"  # the free tier may not mail
    claimed = served.decide(FREE, **mail, nonce="m3", agent={"id": "agent-1", "tier": "pro"})
    assert claimed.status_code == 400 and "`agent` is not taken from the body" in claimed.json()["error"]
    # budgets are per agent.id, and the agent is the credential's
    assert _charge(served, PRO, 60).json()["decision"] == "ALLOW"
    assert _charge(served, PRO, 60).json()["reasons"][0]["name"] == "budget"
    assert _charge(served, FREE, 60).json()["decision"] == "ALLOW"
    assert served.metric("oxdeai_decisions_total", decision="ALLOW", tool="pay.charge", code="none") == 2
    assert served.metric("oxdeai_decisions_total", decision="DENY", tool="pay.charge", code="limit_exceeded") == 1


def test_every_refusal_is_a_json_answer_with_its_status(served: Served) -> None:
    body = {"tool": "mail.send", "args": {"to": "x"}, "nonce": "n"}
    http = served.http
    assert http.post("/v1/decide", json=body).status_code == 401
    assert http.post("/v1/decide", json=body, headers={"X-API-Key": "not-a-known-credential"}).status_code == 401
    assert http.post("/v1/decide", json=body, headers={"Authorization": "Basic cHJvOmJvdA=="}).status_code == 401
    for raw, fragment in [(b'{"tool":', "not valid JSON"), (b'{"tool": "a", "tool": "b"}', "appears twice"),
                          (b'{"tool": "mail.send", "args": {"to": NaN}}', "not JSON"), (b'[1]', "the body"),
                          (b'{"tool": 5}', "`tool`"), (b"\xff\xfe", "not valid JSON")]:
        answer = http.post("/v1/decide", content=raw, headers=PRO)
        assert answer.status_code == 400 and fragment in answer.json()["error"], (raw, answer.text)
    big = http.post("/v1/decide", content=b'{"tool": "' + b"x" * 70_000 + b'"}', headers=PRO)
    assert big.status_code == 413 and "larger than" in big.json()["error"]
    assert http.get("/v1/decide").status_code == 405 and http.get("/nowhere").json()["error"] == "no route /nowhere"
    admin = served.decide({"X-API-Key": "ops-admin-credential-3"}, **body)
    assert admin.status_code == 403
    assert served.metric("oxdeai_decisions_total") == 0  # none of these decided anything
    assert served.metric("oxdeai_requests_rejected_total", status="401") == 3


def test_decide_then_complete_and_the_completion_is_the_deciders_only(served: Served) -> None:
    allowed = _charge(served, PRO, 60).json()
    assert allowed["decision"] == "ALLOW"
    done = {"decision_id": allowed["decision_id"], "outcome": "failed"}
    other = served.http.post("/v1/complete", json=done, headers=FREE)
    assert other.status_code == 409 and "another agent" in other.json()["error"]
    applied = served.http.post("/v1/complete", json=done, headers=PRO)
    assert applied.status_code == 200
    assert applied.json()["effects"] == [{"state": "spent", "key": "agent-1", "before": 60, "after": 0}]
    again = served.http.post("/v1/complete", json=done, headers=PRO)
    assert again.status_code == 409 and "already completed" in again.json()["error"]
    assert served.http.post("/v1/complete", json={"decision_id": "d_nope"}, headers=PRO).status_code == 409
    assert served.http.post("/v1/complete", json={**done, "outcome": "expired"}, headers=PRO).status_code == 400
    assert served.metric("oxdeai_completions_total", outcome="failed", result="applied") == 1
    assert served.metric("oxdeai_completions_total", outcome="failed", result="refused") == 2


def test_the_decision_log_has_one_canonical_line_per_event_and_no_arguments(served: Served,
                                                                            tmp_path: Path) -> None:
    allowed = _charge(served, PRO, 7).json()
    served.http.post("/v1/complete", json={"decision_id": allowed["decision_id"]}, headers=PRO)
    served.decide(FREE, tool="shell.exec", args={"cmd": "secret-token-123"}, nonce="z")
    served.stop()  # the writer drains what is queued before the process ends
    lines = served.log.read_bytes().splitlines()
    chained = [json.loads(line) for line in lines]
    assert all(canonical_json(e) == line for e, line in zip(chained, lines, strict=True))
    assert [e["n"] for e in chained] == [0, 1, 2] and len({e["chain"] for e in chained}) == 1
    events = [e["record"] for e in chained]
    assert [(e["event"], e["caller"]) for e in events] == [("decision", "pro-bot"), ("completion", "pro-bot"),
                                                            ("decision", "free-bot")]
    assert events[0]["decision"] == allowed and events[1]["completion"]["outcome"] == "ok"


def test_a_signed_decision_log_verifies_with_the_published_keys(tmp_path: Path) -> None:
    pytest.importorskip("jwt")
    from click.testing import CliRunner

    from oxdeai.authz.keys import Signer
    from oxdeai.cli import main
    (tmp_path / "log-key.pem").write_bytes(Signer.generate().private_pem())
    served = Served(tmp_path, "memory://", EXAMPLES / "shop.oxp", "--log-signing-key", str(tmp_path / "log-key.pem"),
                    "--log-checkpoint-every", "5")
    try:
        for amount in range(1, 13):
            _charge(served, PRO, amount)
        (tmp_path / "jwks.json").write_text(served.http.get("/.well-known/jwks.json").text)
    finally:
        served.stop()  # the closing checkpoint is written as the service stops
    log, keys = str(served.log), str(tmp_path / "jwks.json")
    result = CliRunner().invoke(main, ["audit", "verify", log, "--keys", keys])
    assert result.exit_code == 0, result.output
    assert "12" in CliRunner().invoke(main, ["audit", "show", log]).output
    lines = served.log.read_bytes().splitlines()
    assert len(lines) == 12 + 2 + 1  # the decisions, a checkpoint after every 5, the closing one
    del lines[3]
    served.log.write_bytes(b"".join(line + b"\n" for line in lines))
    assert CliRunner().invoke(main, ["audit", "verify", log, "--keys", keys]).exit_code == 1
    assert b"secret-token-123" not in served.log.read_bytes() and b'"acct"' not in served.log.read_bytes()


def test_policy_health_and_openapi(served: Served) -> None:
    info = served.http.get("/v1/policy").json()
    assert info["name"] == "shop" and len(info["sha256"]) == 64
    assert info["tools"]["pay.charge"]["required"] == ["amount", "to"]
    assert served.http.get("/readyz").json() == {"ok": True, "checks": {}}
    document = served.http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/v1/decide", "/v1/complete", "/v1/policy", "/v1/policy/reload", "/healthz",
                                      "/readyz", "/.well-known/jwks.json"}
    assert document["components"]["schemas"]["DecideBody"]["additionalProperties"] is False
    assert served.metric("oxdeai_policy_info", name="shop", version="1", sha256=info["sha256"]) == 1
