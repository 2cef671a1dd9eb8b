"""`oxdeai fmt [--check] FILE...`: rewrite files in the canonical layout."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, print_diagnostics, require_file
from oxdeai.dsl.formatter import format_policy
from oxdeai.dsl.parser import parse_source
from oxdeai.dsl.policy import read_source


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 naming files that would change.")
def fmt(files: tuple[str, ...], check_only: bool) -> None:
    """Format policy files in the one canonical layout (comments kept)."""
    for path in files:
        require_file(path)
    status = EXIT_OK
    for path in files:
        text, diagnostics = read_source(path)
        parsed = parse_source(text) if text is not None else None
        if text is None or parsed is None or parsed.policy is None:
            print_diagnostics(list(parsed.diagnostics) if parsed else diagnostics, path, text or "")
            status = EXIT_PROBLEM
            continue
        formatted = format_policy(parsed.policy, parsed.comments, text)
        if formatted == text:
            continue
        if check_only:
            click.echo(f"would reformat {path}")
            status = EXIT_PROBLEM
        else:
            Path(path).write_text(formatted, encoding="utf-8")
            click.echo(f"reformatted {path}")
    sys.exit(status)
