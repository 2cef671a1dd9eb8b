"""oxdeai.guard: decide before, complete after, nothing run on DENY, retries safe."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import pytest

from oxdeai import Denied, Guard, load_policy
from oxdeai.guard import AlreadyDone, Denial, ToolMismatch
from tests.conftest import EXAMPLES
from tests.integrations.policy import AGENT, POLICY, T0


@pytest.fixture
def guard() -> Guard:
    return Guard(load_policy(POLICY), agent=AGENT)


def _entry(guard: Guard, name: str, key: str = "agent-1") -> object:
    value = guard.engine.export_state().get(name, {})
    return value.get(key) if isinstance(value, dict) else value


def test_allow_runs_the_tool_once_and_completes_it(guard: Guard) -> None:
    runs = []

    @guard.tool("pay.charge")
    def charge(amount: int, to: str, note: str = "ignored") -> str:
        runs.append((amount, to, note))
        return f"charged {amount}"

    with guard.bind(time=T0):
        assert charge(amount=40, to="acct") == "charged 40"
    assert runs == [(40, "acct", "none")]  # the declared default, the one the engine decided on
    assert _entry(guard, "spent") == {"value": 40, "written": T0}


def test_deny_runs_nothing_and_answers_the_reasons(guard: Guard) -> None:
    runs = []

    @guard.tool("mail.send")
    def send(to: str) -> str:
        runs.append(to)
        return "sent"

    answer = send(to="ceo@rival.example")
    assert runs == [] and isinstance(answer, Denial)
    assert answer.codes == ["denied_by_rule"]
    assert answer.text == ("DENIED mail.send by policy (oxdeai): denied_by_rule rival: never mail a competitor")
    data = answer.to_dict()
    assert json.loads(json.dumps(data)) == data and data["reasons"][0]["name"] == "rival"
    raising = Guard(guard.engine, agent=AGENT, on_deny="raise")
    with pytest.raises(Denied) as caught:
        raising.call("mail.send", {"to": "x@rival.example"}, lambda to: runs.append(to))
    assert caught.value.denial.codes == ["denied_by_rule"] and runs == []


def test_a_call_to_a_tool_the_policy_does_not_declare_is_denied_not_raised(guard: Guard) -> None:
    runs: list[object] = []
    answer = guard.call("shell.exec", {"cmd": "rm -rf /"}, lambda **args: runs.append(args))
    assert isinstance(answer, Denial) and runs == []
    assert answer.text == "DENIED shell.exec by policy (oxdeai): invalid_request tool: unknown tool `shell.exec`"


def test_a_tool_that_raises_completes_failed_and_its_refund_applies(guard: Guard) -> None:
    @guard.tool("pay.charge")
    def charge(amount: int, to: str, note: str = "") -> str:
        raise RuntimeError("card declined")

    with guard.bind(time=T0), pytest.raises(RuntimeError, match="card declined"):
        charge(amount=30, to="acct")
    assert _entry(guard, "spent") == {"value": 0, "written": T0}  # += 30 on ALLOW, -= 30 on "failed"
    assert _entry(guard, "budget") == {"value": 30, "written": T0}  # the limit counts the attempt


def test_an_idempotent_retry_never_runs_the_tool_again(guard: Guard) -> None:
    runs = []

    @guard.tool("pay.charge")
    def charge(amount: int, to: str, note: str = "") -> dict[str, int]:
        runs.append(amount)
        return {"receipt": len(runs)}

    with guard.bind(time=T0):
        first = charge(amount=50, to="acct", call_id="c1")
    with guard.bind(time=T0 + 60):
        again = charge(amount=50, to="acct", call_id="c2")  # the model retries: a new call id, the same call
        other = charge(amount=5, to="acct", call_id="c3")
    assert runs == [50, 5] and again == first == {"receipt": 1} and other == {"receipt": 2}
    assert _entry(guard, "spent") == {"value": 55, "written": T0 + 60}  # charged once


def test_a_retry_of_a_failed_idempotent_call_raises_its_error_again(guard: Guard) -> None:
    runs = []

    def charge(amount: int, to: str, note: str) -> None:
        runs.append(amount)
        raise RuntimeError("card declined")

    for _ in range(2):
        with guard.bind(time=T0), pytest.raises(RuntimeError, match="card declined"):
            guard.call("pay.charge", {"amount": 20, "to": "acct"}, charge)
    assert runs == [20]


def test_a_repeat_whose_result_another_process_holds_is_already_done(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    policy = load_policy(POLICY)
    first, second = Guard(policy, store=url, agent=AGENT), Guard(policy, store=url, agent=AGENT)
    runs = []
    with first.bind(time=T0):
        assert first.call("pay.charge", {"amount": 10, "to": "a"}, lambda **a: runs.append(a) or "ok") == "ok"
    with second.bind(time=T0 + 1):
        answer = second.call("pay.charge", {"amount": 10, "to": "a"}, lambda **a: runs.append(a))
    assert isinstance(answer, AlreadyDone) and not answer.running and len(runs) == 1
    assert "was not run again" in answer.text


def test_the_concurrency_cap_holds_across_concurrent_async_calls(guard: Guard) -> None:
    inside = []

    async def scenario() -> list[object]:
        release = asyncio.Event()

        @guard.tool("pay.slow")
        async def slow(amount: int) -> str:
            inside.append(amount)
            await release.wait()
            return f"done {amount}"

        with guard.bind(time=T0):
            tasks = [asyncio.create_task(slow(amount=n)) for n in range(1, 6)]
            await asyncio.sleep(0.05)
            assert len(inside) == 2  # two slots: the other three were denied without running
            release.set()
            answers = await asyncio.gather(*tasks)
            assert await slow(amount=9) == "done 9"  # both slots released by the completions
        return answers

    answers = asyncio.run(scenario())
    denied = [a for a in answers if isinstance(a, Denial)]
    assert len(denied) == 3 and all(a.codes == ["limit_exceeded"] for a in denied)
    assert sorted(a for a in answers if isinstance(a, str)) == ["done 1", "done 2"]


def test_the_agent_comes_from_the_host_per_run_never_from_the_model(guard: Guard) -> None:
    async def one(agent: dict[str, str]) -> object:
        with guard.bind(agent=agent, time=T0):
            await asyncio.sleep(0)  # let the other run bind its own agent
            return await guard.acall("mail.send", {"to": "a@b.example"}, _async_ok)

    async def both() -> list[object]:
        return list(await asyncio.gather(one({"id": "p", "tier": "pro"}), one({"id": "f", "tier": "free"})))

    pro, free = asyncio.run(both())
    assert pro == "ok" and isinstance(free, Denial) and free.codes == ["no_matching_rule"]
    smuggled = guard.call("mail.send", {"to": "a@b.example", "agent": {"tier": "pro"}}, lambda **a: "ran")
    assert isinstance(smuggled, Denial) and smuggled.codes == ["invalid_request"]


async def _async_ok(**args: object) -> str:
    return "ok"


def test_a_tool_that_does_not_match_its_declaration_is_refused_at_construction(guard: Guard) -> None:
    def missing(amount: int) -> None: ...
    def extra(amount: int, to: str, note: str = "", cc: str = "") -> None: ...
    def wrong_type(amount: str, to: str, note: str = "") -> None: ...
    def optional(amount: int = 1, to: str = "", note: str = "") -> None: ...
    def kwargs(**args: object) -> None: ...

    cases = {missing: ["declares `to`", "declares `note`"], extra: ["takes `cc`"],
             wrong_type: ["`amount` is str in the function but int[1..1000] in the policy"],
             optional: ["`amount` is required by the policy but optional", "`to` is required"],
             kwargs: ["`args` collects extra arguments"]}
    for fn, phrases in cases.items():
        with pytest.raises(ToolMismatch) as caught:
            guard.tool("pay.charge")(fn)
        assert "tool `pay.charge` does not match" in str(caught.value)
        for phrase in phrases:
            assert phrase in str(caught.value), (fn.__name__, str(caught.value))
    with pytest.raises(KeyError, match="no tool `pay.refund`"):
        guard.tool("pay.refund")
    tiers = Guard(load_policy(EXAMPLES / "payments.oxp"))

    def transfer(amount: int, currency: Literal["USD", "EUR"], to: str, memo: str = "") -> None: ...
    def transfer_gbp(amount: int, currency: Literal["USD", "GBP"], to: str, memo: str = "") -> None: ...

    tiers.tool("payments.transfer")(transfer)
    with pytest.raises(ToolMismatch, match="`currency`"):
        tiers.tool("payments.transfer")(transfer_gbp)


def test_async_decisions_on_a_durable_store_match_the_sync_ones(tmp_path: Path) -> None:
    policy = load_policy(POLICY)
    guard = Guard(policy, store=f"sqlite:///{tmp_path / 's.db'}", agent=AGENT)

    async def run() -> object:
        with guard.bind(time=T0):
            return await guard.acall("pay.charge", {"amount": 70, "to": "a"}, _async_ok)

    answer = asyncio.run(run())
    assert isinstance(answer, Denial) and answer.codes == ["no_matching_rule"]
    with guard.bind(time=T0):
        assert guard.call("pay.charge", {"amount": 60, "to": "a"}, lambda **a: "sync") == "sync"


def test_a_published_schema_is_compared_with_the_declaration() -> None:
    from oxdeai.guard.tool_schema import json_schema, schema_mismatches
    shop = load_policy(EXAMPLES / "shop.oxp")
    charge = shop.tools["pay.charge"]
    assert schema_mismatches(charge, json_schema(charge)) == []  # the declaration's own schema agrees
    loose = {"type": "object", "properties": {"amount": {"type": "integer"}, "to": {}, "note": {"type": "string"}},
             "required": ["amount"]}
    assert schema_mismatches(charge, loose) == ["`to` is required in the declaration, optional in the schema"]
    agent_enum = load_policy('policy p\nagent { id: string }\ntool t.x(tier: "free" | "pro")\n').tools["t.x"]
    other = {"properties": {"tier": {"type": "string", "enum": ["free", "gold"]}}, "required": ["tier"]}
    assert schema_mismatches(agent_enum, other) == ["`tier` takes ['free', 'pro'] in the declaration, "
                                                    "['free', 'gold'] in the schema"]
