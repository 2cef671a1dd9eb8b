"""`oxdeai fmt [--check] [--diff] FILE...`: rewrite files in the canonical layout.

`--check` changes nothing and exits 1 naming each file that would change (with the
first line that differs); `--diff` changes nothing and prints a unified diff of what
would change (exit 1 when there is one)."""

from __future__ import annotations

import difflib
import itertools
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
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print a unified diff of what would change.")
def fmt(files: tuple[str, ...], check_only: bool, show_diff: bool) -> None:
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
        if show_diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(keepends=True), formatted.splitlines(keepends=True),
                                                    f"{path} (as written)", f"{path} (formatted)")), nl=False)
            status = EXIT_PROBLEM
        elif check_only:
            pairs = enumerate(itertools.zip_longest(text.splitlines(), formatted.splitlines()), start=1)
            line = next((i for i, (a, b) in pairs if a != b), len(text.splitlines()))  # else: the last newline
            click.echo(f"would reformat {path} (first difference at line {line}; `oxdeai fmt --diff` shows all)")
            status = EXIT_PROBLEM
        else:
            Path(path).write_text(formatted, encoding="utf-8")
            click.echo(f"reformatted {path}")
    sys.exit(status)
