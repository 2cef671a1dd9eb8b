"""`oxdeai mcp-proxy`, for real: the MCP SDK's client talks over stdio to the proxy, which
runs the SDK's server examples/agents/mcp_shop_server.py as its upstream. The upstream
appends every call that reaches it to a log file, so what got through is counted on
the server's side."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from oxdeai import Engine, load_policy
from oxdeai.runtime.store_urls import open_store
from tests.conftest import EXAMPLES, run_cli
from tests.integrations.policy import load_example

pytest.importorskip("mcp")
import mcp.types as types  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

example = load_example("mcp_shop")
PRO = {"id": "agent-9", "tier": "pro"}


def _params(tmp_path: Path, agent: dict[str, Any], store: str = "memory://") -> Any:
    params = example.proxy(agent, store)
    return params.model_copy(update={"env": {"SHOP_CALL_LOG": str(tmp_path / "calls.jsonl")}})


def _reached(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "calls.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _session(params: Any, body: Any) -> Any:
    async def run() -> Any:
        async with Client(params) as client:
            return await body(client)
    return asyncio.run(asyncio.wait_for(run(), 120))


def test_the_example_session_refund_retry_and_budget(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    tools, seen, answer = asyncio.run(example.run(_params(tmp_path, example.AGENT, store), example.shop_script))
    assert tools == ["pay.charge", "pay.slow"]  # free tier: no mail.send; admin.wipe is not declared
    assert [error for _, error in seen] == [True, False, False, True]
    assert seen[1] == seen[2] == ("charged 40 to card-2", False)  # the retry answers the first result
    assert "limit_exceeded budget" in seen[3][0] and answer.startswith("I charged 40 to card-2; today's budget")
    assert _reached(tmp_path) == [  # the retry and the denied charge never reached the server
        {"tool": "pay.charge", "args": {"amount": 30, "to": "declined-card-1", "note": "none"}},
        {"tool": "pay.charge", "args": {"amount": 40, "to": "card-2", "note": "none"}}]
    policy = load_policy(EXAMPLES / "shop.oxp")
    state = Engine(policy, store=open_store(store, policy)).export_state()
    assert state["spent"]["agent-7"]["value"] == 40  # the declined 30 was refunded on completion "failed"


def test_a_denied_call_never_reaches_the_server(tmp_path: Path) -> None:
    async def body(client: Client) -> tuple[list[str], list[types.CallToolResult]]:
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        return listed, [await client.call_tool("mail.send", {"to": "ceo@rival.example"}),
                        await client.call_tool("admin.wipe", {}),
                        await client.call_tool("mail.send", {"to": "ann@customer.example"})]

    listed, (rival, wipe, customer) = _session(_params(tmp_path, PRO), body)
    assert listed == ["mail.send", "pay.charge", "pay.slow"]  # the pro tier may mail
    assert rival.is_error and example.text_of(rival) == \
        "DENIED mail.send by policy (oxdeai): denied_by_rule rival: never mail a competitor"
    assert rival.structured_content["reasons"][0]["name"] == "rival"
    assert wipe.is_error and "invalid_request tool: unknown tool `admin.wipe`" in example.text_of(wipe)
    assert not customer.is_error and example.text_of(customer) == "mailed ann@customer.example"
    assert _reached(tmp_path) == [{"tool": "mail.send", "args": {"to": "ann@customer.example"}}]


def test_an_upstream_error_keeps_its_reason_and_completes_the_call_failed(tmp_path: Path) -> None:
    async def body(client: Client) -> list[Any]:
        errors = []
        for _ in range(3):  # `slots` allows two in flight: each failure must have released its lease
            with pytest.raises(MCPError) as caught:
                await client.call_tool("pay.slow", {"amount": 600})
            errors.append((caught.value.code, caught.value.message))
        ok = await client.call_tool("pay.slow", {"amount": 5})
        catalog = await client.read_resource("shop://catalog")
        return [errors, example.text_of(ok), catalog.contents[0].text]

    errors, ok, catalog = _session(_params(tmp_path, PRO), body)
    assert errors == [(-32000, "the job queue takes at most 500")] * 3
    assert ok == "job for 5 done" and catalog == "tea 4, coffee 5"  # resources are forwarded as they are
    assert [c["tool"] for c in _reached(tmp_path)] == ["pay.slow"] * 4


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --agent-id or --agent"),
    (["--agent", '{"id": "a", "tier": "gold"}'], "the agent record does not fit"),
    (["--agent", "{"], "the agent is not valid JSON"),
])
def test_a_bad_agent_is_a_usage_error(args: list[str], message: str) -> None:
    code, output = run_cli("mcp-proxy", "--policy", str(EXAMPLES / "shop.oxp"), *args, "--", "true")
    assert code == 2 and message in output, output


@pytest.mark.parametrize("command, message", [
    ("false", "the server `false`: Connection closed"),  # exits at once
    ("/nonexistent/mcp-server", "No such file or directory"),
])
def test_an_upstream_that_cannot_be_reached_is_a_clear_error(command: str, message: str) -> None:
    code, output = run_cli("mcp-proxy", "--policy", str(EXAMPLES / "shop.oxp"), "--agent", json.dumps(PRO),
                           "--", command)
    assert code == 1 and message in output and "Traceback" not in output, output


def test_a_server_whose_tools_drifted_from_the_declarations_is_refused_at_start() -> None:
    drifted = str(Path(__file__).parent / "mcp_drifted_server.py")
    code, output = run_cli("mcp-proxy", "--policy", str(EXAMPLES / "shop.oxp"), "--agent", json.dumps(PRO),
                           "--", sys.executable, drifted)
    assert code == 1, output
    for problem in ("`pay.charge`: `note` is declared but not in the schema",
                    "`pay.charge`: `memo` is in the schema but not declared",
                    "`pay.charge`: `amount` is integer in the declaration, string in the schema"):
        assert problem in output, output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_proxy_over_streamable_http_on_loopback(tmp_path: Path) -> None:
    port = _free_port()
    params = _params(tmp_path, example.AGENT)
    split = params.args.index("--")  # the proxy's options, then the real server's command
    proxy = subprocess.Popen([params.command, *params.args[:split], "--http", f"127.0.0.1:{port}",
                              *params.args[split:]], env={**os.environ, **params.env}, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # until uvicorn listens (the proxy first asks the verifier what to list)
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            assert proxy.poll() is None and time.monotonic() < deadline, "the proxy did not start listening"
            time.sleep(0.2)

        async def body(client: Client) -> tuple[list[str], types.CallToolResult, types.CallToolResult]:
            listed = sorted(t.name for t in (await client.list_tools()).tools)
            return (listed, await client.call_tool("mail.send", {"to": "ann@customer.example"}),
                    await client.call_tool("pay.charge", {"amount": 5, "to": "card-1"}))

        listed, mail, charge = _session(f"http://127.0.0.1:{port}/mcp", body)
    finally:
        proxy.terminate()
        _, stderr = proxy.communicate(timeout=30)
    assert listed == ["pay.charge", "pay.slow"]
    assert mail.is_error and "DENIED mail.send" in example.text_of(mail)  # the free tier may not mail
    assert not charge.is_error and example.text_of(charge) == "charged 5 to card-1"
    assert [c["tool"] for c in _reached(tmp_path)] == ["pay.charge"]
    assert proxy.returncode == 0 and "Traceback" not in stderr, stderr
