"""`oxdeai diff OLD NEW [--format text|json] [--fail-on-new-access]`."""

from __future__ import annotations

import json
import sys

import click

from oxdeai.cli.common import EXIT_INTERNAL, EXIT_OK, EXIT_PROBLEM, EXIT_UNKNOWN, load_for_command
from oxdeai.verifier.diff import diff_policies
from oxdeai.verifier.replay import ReplayError
from oxdeai.verifier.results import eval_command
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIMEOUT


@click.command()
@click.argument("old")
@click.argument("new")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--fail-on-new-access", is_flag=True,
              help="Exit 1 when NEW allows anything OLD did not; exit 3 when that could not be decided.")
@click.option("--budget", type=click.IntRange(min=1), default=DEFAULT_BUDGET, show_default=True,
              help="Solver resource units per query (Z3 rlimit): the deterministic limit; a query that "
                   "uses it up is `unknown`, the same on every machine.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per query: a wall-clock backstop, far above what the budget costs.")
def diff(old: str, new: str, fmt: str, fail_on_new_access: bool, budget: int, timeout: float) -> None:
    """Requests whose decision changes between two versions of a policy, as witnesses."""
    old_policy, new_policy = load_for_command(old), load_for_command(new)
    try:
        report = diff_policies(old_policy, new_policy, timeout, budget)
    except ReplayError as exc:
        click.echo(f"oxdeai: internal error: a diff witness did not replay ({exc.what}): "
                   f"{json.dumps(exc.counterexample)} / {exc.engine_saw}", err=True)
        sys.exit(EXIT_INTERNAL)
    except Exception as exc:  # a bug: say so plainly, never a traceback
        click.echo(f"oxdeai: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_INTERNAL)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for title, items, path in (("newly allowed", report.newly_allowed, new), ("newly denied", report.newly_denied, new)):
            for w in items:
                click.echo(f"{title}: {w['tool']}")
                click.echo(f"    request:   {json.dumps(w['request'], ensure_ascii=False)}")
                click.echo(f"    state:     {json.dumps(w['state'], ensure_ascii=False)}")
                click.echo(f"    reproduce: {eval_command(path, w)}")
        for tool in report.added_tools:
            click.echo(f"added tool: {tool}" + (" (NEW can allow it)" if tool in report.added_allowing else ""))
        for tool in report.removed_tools:
            click.echo(f"removed tool: {tool}")
        for u in report.unknown:
            click.echo(f"unknown: {u['tool']} ({u['direction']}): {u['reason']}")
        if report.unknown:
            click.echo(f"inconclusive: {len(report.unknown)} part(s) could not be decided")
        elif not (report.newly_allowed or report.newly_denied or report.added_tools or report.removed_tools):
            click.echo("no decision changes")
    if fail_on_new_access and report.new_access:
        sys.exit(EXIT_PROBLEM)
    sys.exit(EXIT_UNKNOWN if fail_on_new_access and report.unknown else EXIT_OK)
