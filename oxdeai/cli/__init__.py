"""The `oxdeai` command line: one module per command, each imported only when its
command runs (so `oxdeai --version` and `oxdeai check` never load z3)."""

from __future__ import annotations

import importlib

import click

from oxdeai import __version__

# command name -> (module, attribute, its short help as `oxdeai --help` shows it; a test holds
# each equal to the command's own)
COMMANDS = {
    "check": ("oxdeai.cli.check", "check", "Parse and type-check policy files."),
    "fmt": ("oxdeai.cli.fmt", "fmt", "Format policy files in the one canonical layout (comments kept)."),
    "eval": ("oxdeai.cli.eval", "eval_command", "Decide one request, or run a trace against one engine."),
    "verify": ("oxdeai.cli.verify", "verify", "Prove every invariant, assertion and check, or show a counterexample."),
    "diff": ("oxdeai.cli.diff", "diff", "Requests whose decision changes between two versions of a policy, as witnesses."),
    "test": ("oxdeai.cli.test", "test_command", "Run policy unit tests (*.test.json), with rule coverage."),
    "state": ("oxdeai.cli.state", "state", "Inspect and change the state a store holds (budgets, counters, kill switches)."),
    "serve": ("oxdeai.cli.serve", "serve", "Serve decisions over HTTP: POST /v1/decide, /v1/complete; health, metrics, OpenAPI."),
    "audit": ("oxdeai.cli.audit", "audit", "Check and read the tamper-evident decision log (hash chain, signed checkpoints)."),
    "lsp": ("oxdeai.cli.lsp", "lsp", "Run the language server over stdio: diagnostics, hover, definitions, formatting, fixes."),
    "mcp-proxy": ("oxdeai.cli.mcp_proxy", "mcp_proxy", "Serve an MCP server over stdio that gates every tool call of the real one."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The listing from COMMANDS, so `--help` imports no command module."""
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oxdeai")
def main() -> None:
    """oxdeai: deterministic execution authorization for AI agents."""
