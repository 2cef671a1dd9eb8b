"""The guard's two modes for a decision point and an executor in separate processes:
"issue" signs an ALLOW for one exact call, "verify" runs only such a call, once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jwt")

from oxdeai import load_policy  # noqa: E402
from oxdeai.audit.check import audit_log  # noqa: E402
from oxdeai.authz.keys import KeyRing, Signer  # noqa: E402
from oxdeai.authz.tokens import Issuer  # noqa: E402
from oxdeai.guard import AlreadyDone, Authorization, Denial, Executor, Guard, Unauthorized  # noqa: E402
from oxdeai.pep import Refused  # noqa: E402
from tests.conftest import EXAMPLES  # noqa: E402

SIGNER = Signer.generate()
AGENT = {"id": "agent-1", "tier": "pro"}


def decision_point(**options: Any) -> Guard:
    return Guard(load_policy(EXAMPLES / "shop.oxp"), agent=AGENT,
                 issuer=Issuer(SIGNER, "shop-executor", ttl=60), **options)


def executor(ran: list[dict[str, Any]], audience: str = "shop-executor", **options: Any) -> Executor:
    gateway = Executor(keys=KeyRing.of(SIGNER), audience=audience, replay="memory://", **options)

    @gateway.tool("pay.charge")
    def charge(amount: int, to: str, note: str) -> str:
        ran.append({"amount": amount, "to": to, "note": note})
        return f"charged {amount} to {to}"

    return gateway


def sent(authorization: Authorization) -> dict[str, Any]:
    """The envelope as the executor receives it, over the wire."""
    return json.loads(json.dumps(authorization.to_dict()))


def test_an_authorized_call_runs_once_with_the_arguments_decided() -> None:
    guard, ran = decision_point(), []
    gateway = executor(ran)
    authorization = guard.authorize("pay.charge", {"amount": 40, "to": "acct-9"})
    assert isinstance(authorization, Authorization)
    assert gateway.run(sent(authorization)) == "charged 40 to acct-9"
    assert ran == [{"amount": 40, "to": "acct-9", "note": "none"}]  # the declared default, as decided
    again = gateway.run(sent(authorization))
    assert isinstance(again, Refused) and again.reason == "replayed" and len(ran) == 1
    (refund,) = guard.report(authorization, "failed")  # the executor's outcome completes the call
    assert (refund[0], refund[2], refund[3]) == ("spent", 40, 0)


def test_the_executor_refuses_what_was_not_authorized() -> None:
    guard, ran = decision_point(), []
    gateway = executor(ran)
    envelope = sent(guard.authorize("pay.charge", {"amount": 10, "to": "acct-1"}))
    stretched = {**envelope, "call": {**envelope["call"], "args": {**envelope["call"]["args"], "amount": 1000}}}
    other_agent = {**envelope, "context": {"agent": {"id": "agent-2", "tier": "pro"}}}
    other_tool = {**envelope, "call": {**envelope["call"], "tool": "pay.slow"}}
    for bad in (stretched, other_agent):
        refused = gateway.run(bad)
        assert isinstance(refused, Refused) and refused.reason == "wrong_call"
    assert gateway.run(other_tool).reason == "wrong_call"  # this executor runs no such tool
    assert executor(ran, audience="mail-executor").run(envelope).reason == "wrong_audience"
    stranger = Executor(keys=KeyRing.of(Signer.generate()), audience="shop-executor", replay=None)
    stranger.tool("pay.charge")(lambda **args: ran.append(args))
    assert stranger.run(envelope).reason == "unknown_key"  # keys of another decision point
    assert gateway.run({"call": "pay.charge"}).reason == "malformed"
    assert ran == []
    assert gateway.run(envelope) == "charged 10 to acct-1"  # the untouched one still runs


def test_a_denied_or_repeated_call_gets_no_authorization() -> None:
    guard = decision_point()
    denied = guard.authorize("pay.charge", {"amount": 900, "to": "acct-1"})  # over the 60 the rule allows
    assert isinstance(denied, Denial)
    first = guard.authorize("pay.charge", {"amount": 5, "to": "acct-1"}, call_id="c1")
    assert isinstance(first, Authorization)
    repeat = guard.authorize("pay.charge", {"amount": 5, "to": "acct-1"}, call_id="c2")  # idempotent: same call
    assert isinstance(repeat, AlreadyDone) and repeat.decision_id == first.decision_id


def test_refusals_raise_when_asked_and_async_tools_run() -> None:
    guard, ran = decision_point(), []
    gateway = executor(ran, on_refuse="raise")
    envelope = sent(guard.authorize("pay.charge", {"amount": 3, "to": "a"}))
    gateway.run(envelope)
    with pytest.raises(Unauthorized, match="replayed"):
        gateway.run(envelope)

    async_gateway = Executor(keys=KeyRing.of(SIGNER), audience="shop-executor", replay="memory://")

    @async_gateway.tool("pay.charge")
    async def charge(amount: int, to: str, note: str) -> int:
        return amount * 2

    fresh = sent(guard.authorize("pay.charge", {"amount": 4, "to": "b"}))
    assert asyncio.run(async_gateway.arun(fresh)) == 8
    with pytest.raises(TypeError, match="arun"):
        async_gateway.run(sent(guard.authorize("pay.charge", {"amount": 6, "to": "c"})))


def test_the_guards_decisions_and_completions_go_to_a_verifiable_log(tmp_path: Path) -> None:
    log = tmp_path / "guard.jsonl"
    from oxdeai.audit.log import DecisionLog
    guard = decision_point(log=DecisionLog(str(log), signer=SIGNER, checkpoint_every=2, who="oxdeai guard"))
    authorization = guard.authorize("pay.charge", {"amount": 7, "to": "acct-1"})
    guard.report(authorization, "failed")
    guard.call("mail.send", {"to": "x@rival.example"}, lambda **_: "sent")
    assert guard.log is not None
    guard.log.close()
    records = [json.loads(line)["record"] for line in log.read_bytes().splitlines()]
    events = [r["event"] for r in records]
    assert events == ["decision", "completion", "checkpoint", "decision", "checkpoint"]
    assert records[0]["caller"] == "agent-1" and records[1]["completion"]["effects"][0]["after"] == 0
    assert audit_log([str(log)], KeyRing.of(SIGNER)).ok


def test_issue_mode_needs_an_issuer() -> None:
    with pytest.raises(ValueError, match="issuer"):
        Guard(load_policy(EXAMPLES / "shop.oxp"), agent=AGENT).authorize("pay.charge", {"amount": 1, "to": "a"})


def test_the_gateway_example_executes_only_what_carries_a_valid_authorization() -> None:
    """examples/agents/gateway.py, as docs/receipts.md tells a reader to run it: a real
    Starlette gateway on uvicorn (loopback), the host deciding in issue mode."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    import subprocess
    import sys

    from tests.conftest import ROOT
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "agents" / "gateway.py")], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == 'charge 25: 200 {"charged":25,"to":"acct-42"}'
    assert [line.split(": ")[1][:3] for line in lines[1:4]] == ["403", "403", "403"]
    assert '"refused":"replayed"' in lines[1] and '"refused":"wrong_call"' in lines[2]
    assert '"refused":"unknown_key"' in lines[3] and "no_matching_rule" in lines[4]
    assert lines[5] == "the gateway charged: [{'amount': 25, 'to': 'acct-42'}]"
