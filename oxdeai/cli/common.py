"""What the commands share: exit codes and loading a policy file for a command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from oxdeai.dsl.diagnostics import Diagnostic, render
from oxdeai.dsl.policy import CheckedPolicy, compile_source, read_source

STORE_HELP = ("Where state lives: memory://, sqlite:///PATH, or redis://[:PASSWORD@]HOST:PORT/DB "
              "(rediss:// for TLS, unix:///PATH for a socket).")

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


def compile_for_command(path: str) -> tuple[CheckedPolicy | None, list[Diagnostic], str]:
    """A policy file compiled: the policy (None when it has errors), its diagnostics, its text."""
    text, diagnostics = read_source(path)
    if text is None:
        return None, diagnostics, ""
    policy, diagnostics = compile_source(text, path)
    return policy, diagnostics, text


def load_for_command(path: str) -> CheckedPolicy:
    """Load a policy for a command: problems are printed and exit 1."""
    require_file(path)
    policy, diagnostics, text = compile_for_command(path)
    if policy is None:
        print_diagnostics(diagnostics, path, text)
        sys.exit(EXIT_PROBLEM)
    return policy


def read_argument(value: str, what: str) -> str:
    """`@path` reads a file; anything else is the text itself — unless it looks like a
    file name (an existing file, or a name ending in .json/.jsonl), when the `@` was
    surely forgotten: exit 2 saying so."""
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail_usage(f"cannot read {what} file `{path}`: {exc}")
    stripped = value.strip()
    if stripped and stripped[0] not in "{[\"" and (stripped.endswith((".json", ".jsonl")) or _is_file(stripped)):
        fail_usage(f"{what} `{stripped}` looks like a file name: give it as `@{stripped}` to read the file")
    return value


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except (OSError, ValueError):
        return False


def parse_json(text: str, what: str) -> Any:
    """Strict JSON (runtime/strict_json.py); errors are exit 2 with the reason."""
    from oxdeai.runtime.strict_json import DuplicateKey, loads_strict  # `check` and `fmt` load no runtime

    try:
        return loads_strict(text)
    except DuplicateKey as exc:
        fail_usage(f"{what} is ambiguous: {exc}")
    except (ValueError, RecursionError) as exc:
        fail_usage(f"{what} is not valid JSON: {exc}")
