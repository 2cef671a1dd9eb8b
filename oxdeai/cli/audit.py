"""`oxdeai audit verify LOG... [--keys FILE]... [--open] [--format text|json]` and
`oxdeai audit show LOG... [--chain ID] [--last N] [--format table|json]`: check and read
the decision log of `oxdeai serve` and of the guard (docs/receipts.md).

LOG: the log file and its rotated parts (`decisions.jsonl*`), in any order. `--keys`:
the checkpoints' public keys — a JWKS document (as `oxdeai serve` publishes at
/.well-known/jwks.json) or a PEM key (public, or the private key itself); repeatable.
`verify` exits 0 when every line, link and checkpoint checks out and every chain ends
closed (or `--open` accepts one still being written), 1 at the first bad line (all
are listed), 2 when a file or key cannot be used, 3 when the chain is intact but no
keys were given to check its checkpoints (inconclusive, like `verify`'s unknown).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_UNKNOWN, fail_usage

SHOWN_PROBLEMS = 20


@click.group()
def audit() -> None:
    """Check and read the tamper-evident decision log (hash chain, signed checkpoints)."""


def _key_ring(paths: tuple[str, ...]) -> Any:
    from oxdeai.authz.keys import KeyProblem, KeyRing, Signer

    ring = KeyRing()
    for raw in paths:
        path = Path(raw)
        try:
            data = path.read_bytes()
        except OSError as exc:
            fail_usage(f"cannot read the key file `{raw}`: {exc.strerror or exc}")
        try:
            if data.lstrip().startswith(b"{"):
                ring.keys.update(KeyRing.from_jwks(json.loads(data)).keys)
            elif b"PRIVATE KEY" in data:
                signer = Signer.from_pem(data)
                ring.keys[signer.kid] = signer.verification_key()
            else:
                ring.add_pem(None, data)
        except (KeyProblem, ValueError) as exc:
            fail_usage(f"`{raw}` is not a JWKS document or an Ed25519 PEM key: {exc}")
    if paths and not ring.keys:
        fail_usage("the key files hold no Ed25519 key")
    return ring


def _existing(paths: tuple[str, ...]) -> list[str]:
    for raw in paths:
        if not Path(raw).is_file():
            fail_usage(f"no log file `{raw}`")
    return list(dict.fromkeys(paths))


@audit.command(name="verify")
@click.argument("logs", nargs=-1, required=True)
@click.option("--keys", "key_files", multiple=True, help="The checkpoints' public keys: a JWKS file or a PEM key.")
@click.option("--open", "allow_open", is_flag=True,
              help="Accept chains that do not end closed (a log still being written).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(logs: tuple[str, ...], key_files: tuple[str, ...], allow_open: bool, fmt: str) -> None:
    """Check every line, link and checkpoint of a decision log; report the first bad line."""
    from oxdeai.audit.check import audit_log

    paths = _existing(logs)
    report = audit_log(paths, _key_ring(key_files) if key_files else None, allow_open)
    code = EXIT_PROBLEM if report.problems else EXIT_UNKNOWN if report.unchecked else EXIT_OK
    if fmt == "json":
        click.echo(json.dumps({
            "ok": code == EXIT_OK, "files": report.files, "lines": report.lines, "checked_checkpoints": not report.unchecked,
            "chains": [vars(c) for c in report.chains], "open": report.open_tails,
            "problems": [vars(p) for p in report.problems]}, indent=2, sort_keys=True))
        sys.exit(code)
    click.echo(f"{report.lines:,} lines in {len(report.files)} file(s), {len(report.chains)} chain(s)")
    for chain in report.chains:
        state = "closed" if chain.closed else "open"
        click.echo(f"  chain {chain.id}: {chain.lines:,} lines, {chain.checkpoints:,} checkpoints, {state}")
    for note in report.open_tails:
        click.echo(f"note: {note}")
    for problem in report.problems[:SHOWN_PROBLEMS]:
        click.echo(f"FAIL {problem}")
    if len(report.problems) > SHOWN_PROBLEMS:
        click.echo(f"... and {len(report.problems) - SHOWN_PROBLEMS} more problems")
    if code == EXIT_OK:
        click.echo("ok: every line, link and checkpoint checks out")
    elif code == EXIT_UNKNOWN:
        click.echo("unchecked: the links hold, but without --keys the checkpoints were not verified, so a "
                   "rewritten log would pass too")
    sys.exit(code)


@audit.command(name="show")
@click.argument("logs", nargs=-1, required=True)
@click.option("--chain", "chain_id", default=None, help="Only this chain's lines.")
@click.option("--last", type=click.IntRange(1), default=None, help="Only the last N lines.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def show_command(logs: tuple[str, ...], chain_id: str | None, last: int | None, fmt: str) -> None:
    """Print a decision log's records as a table (no checks: see `audit verify`)."""
    from oxdeai.audit.show import rows

    table = rows(_existing(logs), chain_id)
    if last is not None:
        table = table[-last:]
    if fmt == "json":
        for row in table:
            click.echo(json.dumps(row, sort_keys=True))
        sys.exit(EXIT_OK)
    columns = ["chain", "n", "event", "caller", "tool", "result", "reasons", "id"]
    widths = {c: max([len(c), *(len(str(r.get(c, ""))) for r in table)]) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns).rstrip())
    for row in table:
        click.echo("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns).rstrip())
    sys.exit(EXIT_OK)
