"""`oxdeai check FILE...`: parse and type-check; prints nothing when all is well."""

from __future__ import annotations

import json
import sys

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, print_diagnostics, require_file
from oxdeai.dsl.policy import compile_source, read_source


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check(files: tuple[str, ...], fmt: str) -> None:
    """Parse and type-check policy files."""
    for path in files:
        require_file(path)
    report = []
    failed = False
    for path in files:
        text, diagnostics = read_source(path)
        if text is not None:
            _, diagnostics = compile_source(text, path)
        failed = failed or any(d.is_error for d in diagnostics)
        if fmt == "json":
            report.append({"path": path, "diagnostics": [d.to_json() for d in diagnostics]})
        else:
            print_diagnostics(diagnostics, path, text or "")
    if fmt == "json":
        click.echo(json.dumps({"files": report}, indent=2, ensure_ascii=False))
    sys.exit(EXIT_PROBLEM if failed else EXIT_OK)
