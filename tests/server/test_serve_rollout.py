"""Live policy rollout on a running `oxdeai serve`: under load, state carried over."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.server.conftest import PRO, Served, httpx

ADMIN = {"X-API-Key": "ops-admin-credential-3"}
LIMIT = "limit budget on pay.charge: sum args.amount per agent.id every 1d <= 100"


def _charge(served: Served, amount: int) -> dict[str, Any]:
    return served.decide(PRO, tool="pay.charge", args={"amount": amount, "to": "acct"}, nonce=uuid.uuid4().hex,
                         idempotency_key=uuid.uuid4().hex).json()  # type: ignore[no-any-return]


class Load:
    """Decisions sent one after another from a thread, every answer kept."""

    def __init__(self, served: Served) -> None:
        self.answers: list[tuple[int, str]] = []
        self.stop = threading.Event()
        self.http = httpx.Client(base_url=str(served.http.base_url), timeout=30)
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            answer = self.http.post("/v1/decide", headers=PRO, json={
                "tool": "mail.send", "args": {"to": "ann@customer.example"}, "nonce": uuid.uuid4().hex})
            code = answer.json()["reasons"][0]["code"] if answer.status_code == 200 and answer.json()["reasons"] \
                else "none"
            self.answers.append((answer.status_code, code))

    def finish(self) -> list[tuple[int, str]]:
        self.stop.set()
        self.thread.join(30)
        self.http.close()
        return self.answers


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_raised_limit_rolls_out_under_load_and_the_spend_carries_over(tmp_path: Path, store: str) -> None:
    policy = tmp_path / "shop.oxp"
    policy.write_text((EXAMPLES / "shop.oxp").read_text())
    served = Served(tmp_path, "memory://" if store == "memory" else f"sqlite:///{tmp_path / 'state.db'}", policy)
    try:
        assert _charge(served, 60)["decision"] == "ALLOW"
        assert served.http.post("/v1/policy/reload", headers=ADMIN).json() == {
            "changed": False, "sha256": served.http.get("/v1/policy").json()["sha256"]}
        assert served.http.post("/v1/policy/reload", headers=PRO).status_code == 403  # admin only
        load = Load(served)
        time.sleep(0.3)
        policy.write_text(policy.read_text().replace(LIMIT, LIMIT.replace("<= 100", "<= 200")))
        report = served.http.post("/v1/policy/reload", headers=ADMIN, timeout=120).json()
        time.sleep(0.3)
        answers = load.finish()
        assert report["changed"] is True and {"budget", "spent"} <= set(report["kept"]), report
        assert report["fresh"] == [] and report["removed"] == [] and report["changed_tools"] == []
        assert len(answers) > 10 and all(a == (200, "none") for a in answers), answers  # none failed
        assert _charge(served, 60)["decision"] == "ALLOW"  # 60 + 60 <= 200: the old spend counts
        assert _charge(served, 60)["decision"] == "ALLOW"  # 180
        over = _charge(served, 30)  # 180 + 30 > 200
        assert over["decision"] == "DENY" and over["reasons"][0]["name"] == "budget"

        serving = served.http.get("/v1/policy").json()["sha256"]
        policy.write_text(policy.read_text() + "assert never_charge: never allow pay.charge\n")
        refused = served.http.post("/v1/policy/reload", headers=ADMIN, timeout=120)
        assert refused.status_code == 409 and refused.json()["serving"] == serving
        assert any("never_charge" in p and "violated" in p for p in refused.json()["problems"])
        assert served.http.get("/v1/policy").json()["sha256"] == serving  # the old version keeps serving
        assert _charge(served, 10)["decision"] == "ALLOW"
    finally:
        stderr = served.stop()
    assert "Traceback" not in stderr, stderr


def test_a_changed_state_starts_fresh_and_sighup_reloads(tmp_path: Path) -> None:
    policy = tmp_path / "shop.oxp"
    policy.write_text((EXAMPLES / "shop.oxp").read_text())
    served = Served(tmp_path, f"sqlite:///{tmp_path / 'state.db'}", policy)
    try:
        assert _charge(served, 60)["decision"] == "ALLOW"
        before = served.http.get("/v1/policy").json()["sha256"]
        # the budget now counts per agent and per payee: a new meaning, so it starts at 0
        policy.write_text(policy.read_text().replace("sum args.amount per agent.id every 1d <= 100",
                                                     "sum args.amount per (agent.id, args.to) every 1d <= 100"))
        served.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while served.http.get("/v1/policy").json()["sha256"] == before:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.2)
        assert _charge(served, 60)["decision"] == "ALLOW"  # 60 in the fresh budget, not 60 + 60
    finally:
        stderr = served.stop()
    assert "SIGHUP reload: 200" in stderr and '"fresh":["budget"]' in stderr, stderr


def test_a_rollout_that_would_break_an_invariant_on_carried_state_is_refused_and_calls_in_flight_expire(
        tmp_path: Path) -> None:
    policy = tmp_path / "shop.oxp"
    policy.write_text((EXAMPLES / "shop.oxp").read_text())
    served = Served(tmp_path, "memory://", policy)
    try:
        assert _charge(served, 60)["decision"] == "ALLOW"
        slow = served.decide(PRO, tool="pay.slow", args={"amount": 5}, nonce="s1").json()
        assert slow["decision"] == "ALLOW"  # in flight: holds one of the two `slots`
        original = policy.read_text()
        policy.write_text(original.replace(LIMIT, LIMIT.replace("<= 100", "<= 50")))  # below today's 60
        refused = served.http.post("/v1/policy/reload", headers=ADMIN, timeout=120)
        assert refused.status_code == 409
        assert refused.json()["problems"] == ["the entries carried over would break invariant `budget` at key "
                                              "'agent-1'"]
        # pay.slow's calls now also add to `spent`: its effects changed, so its call in flight
        # is completed `expired` by the old version before the new one takes over
        policy.write_text(original + "effect on pay.slow: spent += args.amount\n")
        report = served.http.post("/v1/policy/reload", headers=ADMIN, timeout=120).json()
        assert report["changed_tools"] == ["pay.slow"] and report["fresh"] == [], report
        late = served.http.post("/v1/complete", headers=PRO, json={"decision_id": slow["decision_id"]})
        assert late.status_code == 409 and "already completed (expired)" in late.json()["error"]
    finally:
        stderr = served.stop()
    assert "Traceback" not in stderr, stderr
