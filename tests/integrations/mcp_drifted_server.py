"""An MCP server whose `pay.charge` has drifted from examples/shop.oxp: `amount` is a
string, `note` is gone and `memo` is new. `oxdeai mcp-proxy` must refuse to serve it."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("drifted shop")


@server.tool(name="pay.charge")
def charge(amount: str, to: str, memo: str = "") -> str:
    return f"charged {amount} to {to}"


if __name__ == "__main__":
    server.run()
