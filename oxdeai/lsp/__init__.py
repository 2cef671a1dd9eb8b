"""The language server for `.oxp` files: `oxdeai lsp` (server), what it knows of a file (index)."""
