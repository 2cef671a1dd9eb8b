"""An MCP client whose tool calls all pass through `oxdeai mcp-proxy` — runnable with no API key.

Run: .venv/bin/pip install -e '.[mcp]' && .venv/bin/python examples/agents/mcp_shop.py

The client is the MCP SDK's own, over stdio, talking to the proxy the way an agent host
(an IDE, a desktop assistant) talks to any MCP server. The proxy starts the real shop
server (examples/agents/mcp_shop_server.py) and gates every call by examples/shop.oxp.
A scripted model stands in for the LLM: it lists the tools (the free-tier agent sees
no `mail.send`, and no `admin.wipe`, which the policy does not declare), charges a card
that is declined (the call is completed "failed" and `spent` refunded; the `budget`
limit still counts the attempt), charges another card, retries that charge (the server
is not called again: the first result is answered), then tries a charge over what is
left of the day's budget and reads why not.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters

HERE = Path(__file__).resolve().parent
POLICY = HERE.parent / "shop.oxp"
SERVER = HERE / "mcp_shop_server.py"
AGENT = {"id": "agent-7", "tier": "free"}

Seen = tuple[str, bool]  # what a call answered (its text), and whether it is an error
Script = Callable[[list[str], list[Seen]], "tuple[str, dict[str, Any]] | str"]


def proxy(agent: dict[str, Any], store: str = "memory://", server: Path = SERVER) -> StdioServerParameters:
    """`oxdeai mcp-proxy` in front of the shop server, as an MCP host would launch it."""
    return StdioServerParameters(command=sys.executable, args=[
        "-m", "oxdeai.cli", "mcp-proxy", "--policy", str(POLICY), "--store", store, "--agent", json.dumps(agent),
        "--", sys.executable, str(server)])


def shop_script(tools: list[str], seen: list[Seen]) -> tuple[str, dict[str, Any]] | str:
    """The scripted model: each turn, the next call to make, or the final answer."""
    turn = len(seen)
    if turn == 0:
        return "pay.charge", {"amount": 30, "to": "declined-card-1"}
    if turn in (1, 2):  # declined, so another card; then the same charge again, as a retry
        return "pay.charge", {"amount": 40, "to": "card-2"}
    if turn == 3:
        return "pay.charge", {"amount": 50, "to": "card-3"}
    if seen[-1][1] and "budget" in seen[-1][0]:
        return "I charged 40 to card-2; today's budget has no room for 50 more."
    return "I charged 40 to card-2 and 50 to card-3."


def text_of(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def run(params: StdioServerParameters, script: Script) -> tuple[list[str], list[Seen], str]:
    """Drive one MCP session: list the tools, then call what the script says until it answers."""
    async with Client(params) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        seen: list[Seen] = []
        while not isinstance(step := script(tools, seen), str):
            name, args = step
            result = await client.call_tool(name, args)
            seen.append((text_of(result), bool(result.is_error)))
        return tools, seen, step


def main() -> None:
    tools, seen, answer = asyncio.run(run(proxy(AGENT), shop_script))
    print("tools listed:", ", ".join(tools))
    for text, is_error in seen:
        print(("error: " if is_error else "ok:    ") + text)
    print("model:", answer)


if __name__ == "__main__":
    main()
