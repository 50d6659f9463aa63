"""`dyncc.lsp`: the language server's public import path, kept since editor integrations (and scripts that lint a
buffer, like `from dyncc.lsp import lint`) were written against it. The server lives in dyncc.tools.lsp."""

from dyncc.tools.lsp import lint, main

__all__ = ["lint", "main"]
