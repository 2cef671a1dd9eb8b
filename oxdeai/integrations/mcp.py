"""The MCP gating proxy (`oxdeai[mcp]`): an MCP server over stdio in front of a real one,
every `tools/call` decided by `oxdeai.guard` before it can reach the real server.

Contract: `run_proxy(guard, command, visible)` starts the upstream server (`command`, a
subprocess inheriting the environment), connects to it as an MCP client, and serves
its own client on stdin/stdout (or over streamable HTTP) with what the upstream offers — tools, resources,
resource templates, prompts, completions — forwarded as they are, except:
  - `tools/list` lists only the upstream tools named in `visible` (the CLI passes the
    tools the policy declares and can ever allow for this agent; verifier/reach.py);
  - `tools/call` is decided first. DENY answers an error result (`isError`) whose text
    is the denial's short text and whose `structuredContent` is its JSON form, and the
    call never reaches upstream — nor does a call to a tool the policy does not declare
    (the engine denies it `invalid_request`), listed or not. ALLOW forwards the call
    with the decided arguments (declared defaults filled in) and completes it "ok", or
    "failed" when the upstream result has `isError` (that result is answered as it is)
    or the upstream answers an MCP error (raised again: its code and message reach the
    client unchanged). An idempotent repeat answers the first call's result.
Nonces come from the guard (a fresh random one per call): an MCP request id restarts at
0 in every session, so it cannot serve as one. The agent is the host's, bound when the
guard was built (`--agent-id` / `--agent`), never read from the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any

import mcp.types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from oxdeai.guard import AlreadyDone, Denial, Guard
from oxdeai.guard.tool_schema import schema_mismatches


class UpstreamError(Exception):
    """The upstream server could not be started, its connection broke, or its tools do not match the declarations."""


class _ToolFailed(Exception):
    """The upstream tool answered an error result: the call is completed "failed"."""

    def __init__(self, result: types.CallToolResult) -> None:
        super().__init__("the upstream tool answered an error result")
        self.result = result


def _cursor(params: types.PaginatedRequestParams | None) -> str | None:
    return params.cursor if params is not None else None


class GatingProxy:
    """The request handlers of the proxy's server, over one upstream connection."""

    def __init__(self, guard: Guard, upstream: Client, visible: set[str]) -> None:
        self.guard = guard
        self.upstream = upstream
        self.visible = visible

    async def check_declarations(self) -> None:
        """Every upstream tool the policy declares must take the declared parameters
        (`schema_mismatches`); else `UpstreamError` naming each difference."""
        problems, cursor = [], None
        while True:
            page = await self.upstream.list_tools(cursor=cursor)
            for tool in page.tools:
                declared = self.guard.policy.tools.get(tool.name)
                if declared is not None:
                    problems += [f"`{tool.name}`: {p}" for p in schema_mismatches(declared, tool.input_schema)]
            if (cursor := page.next_cursor) is None:
                break
        if problems:
            raise UpstreamError("its tools do not match the policy's declarations: " + "; ".join(problems))

    async def list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        listed = await self.upstream.list_tools(cursor=_cursor(params))
        return types.ListToolsResult(tools=[t for t in listed.tools if t.name in self.visible],
                                     next_cursor=listed.next_cursor)

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name

        async def forward(**decided: Any) -> types.CallToolResult:
            result = await self.upstream.call_tool(name, decided)
            if result.is_error:
                raise _ToolFailed(result)
            return result

        try:
            answer = await self.guard.acall(name, dict(params.arguments or {}), forward)
        except _ToolFailed as failed:
            return failed.result
        if isinstance(answer, Denial):
            return types.CallToolResult(content=[types.TextContent(text=answer.text)],
                                        structured_content=answer.to_dict(), is_error=True)
        if isinstance(answer, AlreadyDone):
            return types.CallToolResult(content=[types.TextContent(text=answer.text)],
                                        structured_content=answer.to_dict())
        assert isinstance(answer, types.CallToolResult)
        return answer

    async def list_resources(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return await self.upstream.list_resources(cursor=_cursor(params))

    async def list_resource_templates(self, ctx: Any, params: types.PaginatedRequestParams | None
                                      ) -> types.ListResourceTemplatesResult:
        return await self.upstream.list_resource_templates(cursor=_cursor(params))

    async def read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await self.upstream.read_resource(params.uri)

    async def list_prompts(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return await self.upstream.list_prompts(cursor=_cursor(params))

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return await self.upstream.get_prompt(params.name, params.arguments)

    async def complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        context = params.context.arguments if params.context is not None else None
        return await self.upstream.complete(params.ref, {params.argument.name: params.argument.value}, context)


def proxy_server(proxy: GatingProxy) -> Server[Any]:
    """The proxy's MCP server: the upstream's name and instructions, and a handler for
    each capability the upstream declares (tools always: that is the gate)."""
    offered = proxy.upstream.server_capabilities
    handlers: dict[str, Any] = {"on_list_tools": proxy.list_tools, "on_call_tool": proxy.call_tool}
    if offered.resources is not None:
        handlers |= {"on_list_resources": proxy.list_resources, "on_read_resource": proxy.read_resource,
                     "on_list_resource_templates": proxy.list_resource_templates}
    if offered.prompts is not None:
        handlers |= {"on_list_prompts": proxy.list_prompts, "on_get_prompt": proxy.get_prompt}
    if offered.completions is not None:
        handlers["on_completion"] = proxy.complete
    info = proxy.upstream.server_info
    name = f"oxdeai gate for {info.name}" if info is not None else "oxdeai gate"
    return Server(name, version=info.version if info is not None else "", instructions=proxy.upstream.instructions,
                  **handlers)


async def run_proxy(guard: Guard, command: list[str], visible: set[str],
                    http: tuple[str, int] | None = None) -> None:
    """Serve on this process's stdin/stdout until the client closes it — or, with `http`
    (host, port), over streamable HTTP at `http://HOST:PORT/mcp` until stopped (SIGINT
    or SIGTERM), every session through the one upstream connection and guard.
    `UpstreamError` when the upstream cannot be started, closes its connection, or
    publishes tools that do not match their declarations."""
    upstream = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    try:
        async with Client(upstream, cache=None) as client:
            proxy = GatingProxy(guard, client, visible)
            await proxy.check_declarations()
            server = proxy_server(proxy)
            if http is not None:
                await _serve_http(server, *http)
                return
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
    except* (OSError, MCPError, UpstreamError) as group:
        raise UpstreamError(f"the server `{command[0]}`: {_innermost(group)}") from None


async def _serve_http(server: Server[Any], host: str, port: int) -> None:
    """uvicorn until SIGINT or SIGTERM, which end it gracefully and let the caller close
    the upstream (uvicorn itself would raise the signal again once it stopped, killing
    the process before the upstream is shut down)."""
    import uvicorn  # the MCP SDK's own dependency

    class Quiet(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, setattr, self, "should_exit", True)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    app = server.streamable_http_app(host=host)  # with the SDK's DNS-rebinding protection on loopback
    await Quiet(uvicorn.Config(app, host=host, port=port, log_level="warning")).serve()


def _innermost(exc: BaseException) -> BaseException:
    """The first exception that is not a group (the SDK nests task groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
