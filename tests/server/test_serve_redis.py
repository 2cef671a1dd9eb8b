"""`oxdeai serve` on a real Redis that goes away and comes back."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.server.conftest import PRO, Served
from tests.stores.test_redis import RedisServer, need_redis_server


def test_readyz_follows_the_store_and_a_store_that_is_down_denies(tmp_path: Path) -> None:
    need_redis_server()
    redis = RedisServer(tmp_path, "--appendonly", "yes")  # the data survives the restart below
    redis.start()
    served = Served(tmp_path, redis.url())
    try:
        def charge() -> dict[str, object]:
            return served.decide(PRO, tool="pay.charge", args={"amount": 10, "to": "acct"}, nonce=uuid.uuid4().hex,
                                 idempotency_key=uuid.uuid4().hex).json()  # type: ignore[no-any-return]

        first = charge()
        assert first["decision"] == "ALLOW" and served.http.get("/readyz").status_code == 200
        redis.stop()
        down = served.http.get("/readyz")
        assert down.status_code == 503 and "store" in down.json()["checks"]
        denied = served.decide(PRO, tool="pay.charge", args={"amount": 10, "to": "acct"}, nonce="n-down",
                               idempotency_key="k-down")
        assert denied.status_code == 200 and denied.json()["reasons"][0]["code"] == "store_unavailable"
        completion = served.http.post("/v1/complete", json={"decision_id": first["decision_id"]}, headers=PRO)
        assert completion.status_code == 503 and "retry" in completion.json()["error"]
        assert served.metric("oxdeai_store_errors_total", operation="decide") == 1
        redis.start()
        assert served.http.get("/readyz").json() == {"ok": True, "checks": {}}
        after = charge()
        assert after["decision"] == "ALLOW"
        assert {e["state"]: e["before"] for e in after["effects"]}["spent"] == 10  # the spend survived
        assert served.http.post("/v1/complete", json={"decision_id": first["decision_id"]},
                                headers=PRO).status_code == 200  # the retried completion applies now
    finally:
        stderr = served.stop()
        redis.stop()
    assert "Traceback" not in stderr, stderr


def test_a_rollout_on_redis_carries_the_spend_over(tmp_path: Path) -> None:
    need_redis_server()
    from tests.conftest import EXAMPLES
    redis = RedisServer(tmp_path)
    redis.start()
    policy = tmp_path / "shop.oxp"
    policy.write_text((EXAMPLES / "shop.oxp").read_text())
    served = Served(tmp_path, redis.url(), policy)
    try:
        def charge(amount: int) -> dict[str, object]:
            return served.decide(PRO, tool="pay.charge", args={"amount": amount, "to": "acct"},
                                 nonce=uuid.uuid4().hex, idempotency_key=uuid.uuid4().hex).json()  # type: ignore[no-any-return]

        assert charge(60)["decision"] == "ALLOW"
        policy.write_text(policy.read_text().replace("every 1d <= 100", "every 1d <= 200"))
        report = served.http.post("/v1/policy/reload", headers={"X-API-Key": "ops-admin-credential-3"}, timeout=120)
        assert report.status_code == 200 and "budget" in report.json()["kept"], report.text
        assert charge(60)["decision"] == "ALLOW" and charge(60)["decision"] == "ALLOW"  # 180 <= 200
        assert charge(30)["reasons"][0]["name"] == "budget"  # type: ignore[index]
    finally:
        stderr = served.stop()
        redis.stop()
    assert "Traceback" not in stderr, stderr
