"""Each agent framework, for real, driven by a scripted model: no network, no LLM.

Every scenario runs through the OpenAI Agents SDK and through a LangGraph agent loop
(LangChain tools, sync and async), with the scripted models the examples under
examples/agents/ run. A scripted model reads what the tools answered so far and
decides its next turn from it, as a real model would: a denial changes its course.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from oxdeai import Guard, load_policy
from oxdeai.guard import ToolMismatch
from tests.conftest import EXAMPLES
from tests.integrations.policy import AGENT, POLICY, T0, load_example

Seen = tuple[str, bool]  # what a tool answered, and whether the framework marked it an error
Script = Callable[[list[Seen]], list[tuple[str, dict[str, Any]]] | str]
ERROR_TEXTS = ("DENIED", "ERROR", "ALREADY DONE")


@dataclass
class Framework:
    name: str
    run: Callable[[Guard, dict[str, Callable[..., Any]], Script], str]  # -> the model's final answer
    build: Callable[[Guard, str, Callable[..., Any]], Any]  # one guarded tool


def _openai_agents() -> Framework:
    pytest.importorskip("agents")
    from oxdeai.integrations.openai_agents import guarded_tool

    example = load_example("openai_agents_shop")

    def run(guard: Guard, tools: dict[str, Callable[..., Any]], script: Script) -> str:
        built = [guarded_tool(guard, name, fn) for name, fn in tools.items()]
        with guard.bind(time=T0):  # the SDK marks nothing: an error is in the text the model reads
            return str(example.run(guard, built, lambda outs: script([(o, o.startswith(ERROR_TEXTS)) for o in outs]),
                                   AGENT))

    return Framework("openai-agents", run, guarded_tool)


def _langgraph(run_async: bool) -> Framework:
    pytest.importorskip("langgraph")
    from oxdeai.integrations.langchain import guarded_tool, guarded_tool_node

    example = load_example("langgraph_shop")

    def run(guard: Guard, tools: dict[str, Callable[..., Any]], script: Script) -> str:
        model = example.ScriptedChatModel(script=lambda seen: script([(str(m.content), m.status == "error")
                                                                      for m in seen]))
        app = example.agent_graph(model, guarded_tool_node(guard, tools))
        with guard.bind(agent=AGENT, time=T0):
            start = {"messages": [("user", "go")]}
            state = asyncio.run(app.ainvoke(start)) if run_async else app.invoke(start)
        return str(state["messages"][-1].content)

    return Framework("langgraph-async" if run_async else "langgraph", run, guarded_tool)


FRAMEWORKS = {"openai-agents": _openai_agents, "langgraph": lambda: _langgraph(False),
              "langgraph-async": lambda: _langgraph(True)}


@pytest.fixture(params=sorted(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> Framework:
    return FRAMEWORKS[request.param]()


def test_a_denial_reaches_the_model_and_shapes_its_next_turn(framework: Framework) -> None:
    guard = Guard(load_policy(POLICY))
    sent: list[str] = []

    def send(to: str) -> str:
        sent.append(to)
        return f"mailed {to}"

    def script(seen: list[Seen]) -> list[tuple[str, dict[str, Any]]] | str:
        if not seen:
            return [("mail__send", {"to": "ceo@rival.example"})]
        text, error = seen[-1]
        if error and text.startswith("DENIED mail.send") and "never mail a competitor" in text:
            return [("mail__send", {"to": "ann@customers.example"})]  # it read why, and changes course
        return f"done: {text}"

    assert framework.run(guard, {"mail.send": send}, script) == "done: mailed ann@customers.example"
    assert sent == ["ann@customers.example"]


def test_a_raising_tool_is_completed_failed_and_its_refund_applies(framework: Framework) -> None:
    guard = Guard(load_policy(POLICY))

    def charge(amount: int, to: str, note: str) -> str:
        raise RuntimeError("card declined")

    def script(seen: list[Seen]) -> list[tuple[str, dict[str, Any]]] | str:
        return [("pay__charge", {"amount": 30, "to": "acct"})] if not seen else f"{seen[-1][1]}: {seen[-1][0]}"

    assert framework.run(guard, {"pay.charge": charge}, script) == \
        "True: ERROR pay.charge failed: RuntimeError: card declined"
    state = guard.engine.export_state()
    assert state["spent"]["agent-1"]["value"] == 0 and state["budget"]["agent-1"]["value"] == 30


def test_an_idempotent_retry_runs_the_tool_once(framework: Framework) -> None:
    guard = Guard(load_policy(POLICY))
    runs: list[int] = []

    def charge(amount: int, to: str, note: str) -> str:
        runs.append(amount)
        return f"receipt {len(runs)}"

    def script(seen: list[Seen]) -> list[tuple[str, dict[str, Any]]] | str:
        if len(seen) < 2:  # the model asks again, as models do after a timeout
            return [("pay__charge", {"amount": 40, "to": "acct"})]
        return " | ".join(text for text, _ in seen)

    assert framework.run(guard, {"pay.charge": charge}, script) == "receipt 1 | receipt 1"
    assert runs == [40]


def test_the_concurrency_cap_holds_across_parallel_async_calls(framework: Framework) -> None:
    if framework.name == "langgraph":
        pytest.skip("a sync graph runs async tools through ainvoke only")
    guard = Guard(load_policy(POLICY))
    inside: list[int] = []

    async def slow(amount: int) -> str:
        inside.append(amount)
        await asyncio.sleep(0.05)
        return f"slow {amount}"

    def script(seen: list[Seen]) -> list[tuple[str, dict[str, Any]]] | str:
        if not seen:
            return [("pay__slow", {"amount": n}) for n in range(1, 5)]  # four calls in one turn
        return json.dumps(sorted(text for text, _ in seen))

    answers = json.loads(framework.run(guard, {"pay.slow": slow}, script))
    assert len(inside) == 2
    assert sum(a.startswith("DENIED") and "limit_exceeded slots" in a for a in answers) == 2


def test_the_schema_is_the_declaration_and_a_mismatch_fails_at_construction(framework: Framework) -> None:
    guard = Guard(load_policy(POLICY))

    def charge(amount: int, to: str, note: str = "") -> str:
        return "ok"

    tool = framework.build(guard, "pay.charge", charge)
    schema = getattr(tool, "params_json_schema", None) or tool.tool_call_schema
    assert tool.name == "pay__charge" and schema["required"] == ["amount", "to"]
    assert schema["properties"]["amount"] == {"type": "integer", "minimum": 1, "maximum": 1000}

    def wrong(amount: str, recipient: str, note: str = "") -> str:
        return "ok"

    with pytest.raises(ToolMismatch, match="`amount` is str in the function but int.*declares `to`"):
        framework.build(guard, "pay.charge", wrong)


# ---- what only one framework has ---------------------------------------------------------


def test_the_sdk_tool_call_id_is_the_nonce() -> None:
    pytest.importorskip("agents")
    from agents.tool_context import ToolContext

    from oxdeai.integrations.openai_agents import guarded_tool

    guard = Guard(load_policy(POLICY))
    tool = guarded_tool(guard, "mail.send", lambda to: f"mailed {to}")
    raw = json.dumps({"to": "a@b.example"})

    async def twice() -> list[str]:
        ctx = ToolContext(context=None, tool_name="mail__send", tool_call_id="call-7", tool_arguments=raw)
        with guard.bind(agent=AGENT, time=T0):
            return [await tool.on_invoke_tool(ctx, raw), await tool.on_invoke_tool(ctx, raw)]

    first, again = asyncio.run(twice())
    assert first == "mailed a@b.example" and again.startswith("DENIED") and "replay" in again


def test_the_langchain_tool_call_id_is_the_nonce() -> None:
    pytest.importorskip("langchain_core")
    from oxdeai.integrations.langchain import guarded_tool

    guard = Guard(load_policy(POLICY))
    tool = guarded_tool(guard, "mail.send", lambda to: f"mailed {to}")
    call = {"name": "mail__send", "args": {"to": "a@b.example"}, "id": "call-7", "type": "tool_call"}
    with guard.bind(agent=AGENT, time=T0):
        first, again = tool.invoke(call), tool.invoke(call)
    assert first.status == "success" and first.content == "mailed a@b.example"
    assert again.status == "error" and "replay" in again.content  # the same call id, replayed


@pytest.mark.parametrize("script,expected", [
    ("openai_agents_shop.py", ["model reads: DENIED mail.send", "final: all done", "charged 1 time(s)"]),
    ("langgraph_shop.py", ["model reads (error): DENIED mail.send", "ERROR pay.charge failed",
                           "spent today after the refund: 0"]),
])
def test_the_examples_run_as_they_say(script: str, expected: list[str]) -> None:
    pytest.importorskip("agents" if script.startswith("openai") else "langgraph")
    out = subprocess.run([sys.executable, str(EXAMPLES / "agents" / script)], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    for phrase in expected:
        assert phrase in out, out
