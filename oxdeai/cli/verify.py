"""`oxdeai verify FILE... [--format text|json|sarif] [--budget N] [--timeout S] [--no-cache]`.

Every file is verified that compiles; one that does not is reported (its
diagnostics) and the others still run. Exit 0 when every property is proved, 1 when
a policy has errors or a property is violated, 3 when some are unknown and none violated, 70 when a counterexample did
not replay (an internal error: both sides are printed). A file verified before with the
same text, budget, timeout and oxdeai code answers from the cache (verifier/cache.py)
without loading the solver; `--no-cache` verifies afresh.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from oxdeai.cli.common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_PROBLEM,
    EXIT_UNKNOWN,
    compile_for_command,
    print_diagnostics,
    require_file,
)
from oxdeai.dsl.diagnostics import render
from oxdeai.verifier import cache
from oxdeai.verifier.results import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Result, eval_command


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--budget", type=click.IntRange(min=1), default=DEFAULT_BUDGET, show_default=True,
              help="Solver resource units per query (Z3 rlimit): the deterministic limit; a query that "
                   "uses it up is `unknown`, the same on every machine.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=DEFAULT_TIMEOUT, show_default=True,
              help="Seconds per query: a wall-clock backstop, far above what the budget costs.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Verify afresh, ignoring answers kept from earlier runs.")
def verify(files: tuple[str, ...], fmt: str, budget: int, timeout: float, no_cache: bool) -> None:
    """Prove every invariant, assertion and check, or show a counterexample."""
    for path in files:
        require_file(path)
    done: list[tuple[str, str, list[Result]]] = []
    broken: list[dict[str, Any]] = []  # files that do not compile: reported, and the others still verified
    for path in files:
        policy, diagnostics, text = compile_for_command(path)
        if policy is None:
            broken.append({"path": path, "diagnostics": [d.to_json() for d in diagnostics], "results": []})
            if fmt == "text":
                print_diagnostics(diagnostics, path, text)
                click.echo(f"{path}: does not compile; not verified")
            else:  # stdout stays one JSON document
                for d in diagnostics:
                    click.echo(render(d, path, text), err=True)
            continue
        kept = None if no_cache else cache.lookup(text, budget, timeout)
        if kept is not None:
            done.append((path, policy.name, kept))
            continue
        from oxdeai.verifier.properties import verify_policy
        from oxdeai.verifier.replay import ReplayError
        try:
            results = verify_policy(policy, timeout, budget)
        except ReplayError as exc:
            click.echo(f"oxdeai: internal error: a counterexample did not replay ({exc.what})", err=True)
            click.echo(f"  the solver's counterexample: {json.dumps(exc.counterexample, ensure_ascii=False)}", err=True)
            click.echo(f"  the engine's decision: {exc.engine_saw}", err=True)
            sys.exit(EXIT_INTERNAL)
        except Exception as exc:  # a bug: say so plainly, never a traceback
            click.echo(f"oxdeai: internal error while verifying {path}: {type(exc).__name__}: {exc}", err=True)
            sys.exit(EXIT_INTERNAL)
        cache.store(text, budget, timeout, results)
        done.append((path, policy.name, results))
    if fmt == "json":
        out = {"files": broken + [{"path": p, "results": [r.to_json() for r in rs]} for p, _, rs in done]}
        click.echo(json.dumps(out, indent=2, ensure_ascii=False))
    elif fmt == "sarif":
        from oxdeai.cli.sarif import to_sarif
        click.echo(json.dumps(to_sarif(done), indent=2, ensure_ascii=False))
    else:
        for path, _, results in done:
            _print_text(path, results)
    statuses = {r.status for _, _, rs in done for r in rs}
    sys.exit(EXIT_PROBLEM if broken or "violated" in statuses else EXIT_UNKNOWN if "unknown" in statuses
             else EXIT_OK)


def _print_text(path: str, results: list[Result]) -> None:
    for r in results:
        what = f"{r.kind} {r.property}" + (f" ({r.detail})" if r.detail else "")
        line = f"{path}:{r.span.line}:{r.span.column}: {r.status:<8} {what}"
        if r.reason:
            line += f": {r.reason}"
        click.echo(line)
        cx: dict[str, Any] | None = r.counterexample
        if cx and "request" in cx:
            click.echo(f"    request:   {json.dumps(cx['request'], ensure_ascii=False)}")
            click.echo(f"    state:     {json.dumps(cx.get('state', {}), ensure_ascii=False)}")
            if cx.get("outcome"):
                click.echo(f"    outcome:   {cx['outcome']}")
            click.echo(f"    reproduce: {eval_command(path, cx)}")
    counts = {s: sum(r.status == s for r in results) for s in ("proved", "violated", "unknown")}
    click.echo(f"{path}: {counts['proved']} proved, {counts['violated']} violated, {counts['unknown']} unknown")
