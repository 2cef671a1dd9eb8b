"""The `oxdeai` command line: one module per command."""

from __future__ import annotations

import click

from oxdeai import __version__
from oxdeai.cli.check import check
from oxdeai.cli.diff import diff
from oxdeai.cli.eval import eval_command
from oxdeai.cli.fmt import fmt
from oxdeai.cli.state import state
from oxdeai.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oxdeai")
def main() -> None:
    """oxdeai: deterministic execution authorization for AI agents."""


main.add_command(check)
main.add_command(fmt)
main.add_command(eval_command)
main.add_command(verify)
main.add_command(diff)
main.add_command(state)
