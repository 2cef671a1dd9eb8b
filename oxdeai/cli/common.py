"""What the commands share: exit codes and loading a policy file for a command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from oxdeai.dsl.diagnostics import Diagnostic, render
from oxdeai.dsl.policy import CheckedPolicy, compile_source, read_source

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_UNKNOWN = 3
EXIT_INTERNAL = 70


def fail_usage(message: str) -> None:
    """Exit 2 with a one-line message on stderr."""
    click.echo(f"oxdeai: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def require_file(path: str) -> None:
    p = Path(path)
    if not p.exists():
        fail_usage(f"no such file `{path}`")
    if p.is_dir():
        fail_usage(f"`{path}` is a directory, not a policy file")


def print_diagnostics(diagnostics: list[Diagnostic], path: str, source: str) -> None:
    for d in diagnostics:
        click.echo(render(d, path, source), err=False)


def load_for_command(path: str) -> CheckedPolicy:
    """Load a policy for eval/verify: problems are printed and exit 1."""
    require_file(path)
    text, diagnostics = read_source(path)
    if text is None:
        print_diagnostics(diagnostics, path, "")
        sys.exit(EXIT_PROBLEM)
    policy, diagnostics = compile_source(text, path)
    if policy is None:
        print_diagnostics(diagnostics, path, text)
        sys.exit(EXIT_PROBLEM)
    return policy
