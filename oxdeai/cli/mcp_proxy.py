"""`oxdeai mcp-proxy --policy P.oxp [--store URL] (--agent-id ID | --agent JSON|@file)
[--http HOST:PORT] -- CMD...`: an MCP server over stdio (or streamable HTTP) that gates
every tool call of the real server `CMD` through the policy
(oxdeai/integrations/mcp.py). Before serving, the verifier decides which declared
tools this agent can ever be allowed (oxdeai/verifier/reach.py): `tools/list` shows
those and the ones it cannot decide (`unknown`; their calls are gated all the same),
and hides the rest. The listing decisions go to stderr, one line per tool.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, STORE_HELP, fail_usage, load_for_command, parse_json, read_argument
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.store import StoreError
from oxdeai.runtime.store_urls import open_store
from oxdeai.verifier.solve import DEFAULT_BUDGET


@click.command(name="mcp-proxy", context_settings={"allow_interspersed_args": False})
@click.option("--policy", "policy_path", required=True, help="The policy every tool call is decided by.")
@click.option("--store", "store_url", default="memory://", show_default=True,
              help=STORE_HELP)
@click.option("--agent-id", help="The agent's id (the whole agent record is {\"id\": ID}).")
@click.option("--agent", "agent_arg", help="The agent record, JSON or @file.")
@click.option("--budget", type=click.IntRange(min=1), default=DEFAULT_BUDGET, show_default=True,
              help="Solver budget per query when deciding which tools to list.")
@click.option("--http", "http_arg", metavar="HOST:PORT",
              help="Serve over streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def mcp_proxy(policy_path: str, store_url: str, agent_id: str | None, agent_arg: str | None, budget: int,
              http_arg: str | None, command: tuple[str, ...]) -> None:
    """Serve an MCP server over stdio that gates every tool call of the real one."""
    try:
        from oxdeai.guard import Guard
        from oxdeai.integrations.mcp import UpstreamError, run_proxy
    except ImportError as exc:
        fail_usage(f"the MCP proxy needs the MCP SDK ({exc}): pip install 'oxdeai[mcp]'")
    if (agent_id is None) == (agent_arg is None):
        fail_usage("give exactly one of --agent-id or --agent")
    http = _host_port(http_arg) if http_arg is not None else None
    policy = load_for_command(policy_path)
    raw = {"id": agent_id} if agent_id is not None else parse_json(read_argument(agent_arg or "", "agent"), "the agent")
    try:
        engine = Engine(policy, store=open_store(store_url, policy))
    except StoreError as exc:
        fail_usage(str(exc))
    agent, problems = engine.schema.agent_record(raw)
    if problems:
        fail_usage("the agent record does not fit the policy's `agent` declaration: "
                   + "; ".join(message for _, _, message in problems))
    visible = _listed_tools(policy, agent, budget)
    try:
        asyncio.run(run_proxy(Guard(engine, agent=agent), list(command), visible, http))
    except UpstreamError as exc:
        click.echo(f"oxdeai mcp-proxy: error: {exc}", err=True)
        sys.exit(EXIT_PROBLEM)
    sys.exit(EXIT_OK)


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail_usage(f"--http takes HOST:PORT (e.g. 127.0.0.1:8765), not `{value}`")
    return host.strip("[]"), int(port)


def _listed_tools(policy: Any, agent: dict[str, Any], budget: int) -> set[str]:
    from oxdeai.verifier.reach import allowable_tools
    listed = set()
    for tool, reach in allowable_tools(policy, agent, budget=budget).items():
        shown = {"yes": "listed", "no": "hidden: no request from this agent can be allowed",
                 "unknown": f"listed (gated; the verifier could not decide: {reach.reason})"}[reach.answer]
        click.echo(f"oxdeai mcp-proxy: {tool}: {shown}", err=True)
        if reach.answer != "no":
            listed.add(tool)
    return listed
