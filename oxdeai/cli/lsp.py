"""`oxdeai lsp`: the language server for `.oxp` files, over stdio (docs/editors.md).
It needs `pip install 'oxdeai[lsp]'` (pygls, lsprotocol)."""

from __future__ import annotations

import click

from oxdeai.cli.common import fail_usage


@click.command(name="lsp")
def lsp() -> None:
    """Run the language server over stdio: diagnostics, hover, definitions, formatting, fixes."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError as exc:
        fail_usage(f"the language server needs its extra ({exc}): pip install 'oxdeai[lsp]'")
    from oxdeai.lsp.server import main

    main()
