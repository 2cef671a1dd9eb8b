"""The shop's real MCP server — the one `oxdeai mcp-proxy` stands in front of in
examples/agents/mcp_shop.py. It knows nothing of oxdeai: it runs whatever it is asked.

Its tools are the ones examples/shop.oxp declares, plus `admin.wipe`, which the policy
does not declare (the proxy hides it and refuses calls to it). A card whose number
starts with "declined" is declined (an error result); `pay.slow` over 500 is refused
with an MCP protocol error (the job queue takes at most 500). When SHOP_CALL_LOG names
a file, every call that reaches this server appends one JSON line to it: the tests
count what got through.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

server = MCPServer("shop")


def _log(tool: str, **args: Any) -> None:
    path = os.environ.get("SHOP_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"tool": tool, "args": args}, sort_keys=True) + "\n")


@server.tool(name="pay.charge", description="Charge a card.")
def charge(amount: int, to: str, note: str = "none") -> str:
    _log("pay.charge", amount=amount, to=to, note=note)
    if to.startswith("declined"):
        raise ToolError(f"card {to} declined")
    return f"charged {amount} to {to}"


@server.tool(name="pay.slow", description="Start a slow payment job.")
def slow(amount: int) -> str:
    _log("pay.slow", amount=amount)
    if amount > 500:
        raise MCPError(code=-32000, message="the job queue takes at most 500")
    return f"job for {amount} done"


@server.tool(name="mail.send", description="Send a mail.")
def send(to: str) -> str:
    _log("mail.send", to=to)
    return f"mailed {to}"


@server.tool(name="admin.wipe", description="Delete every order.")
def wipe() -> str:
    _log("admin.wipe")
    return "every order deleted"


@server.resource("shop://catalog", description="What the shop sells.")
def catalog() -> str:
    return "tea 4, coffee 5"


if __name__ == "__main__":
    server.run()
