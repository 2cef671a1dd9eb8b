"""`oxdeai lsp`: the language server for `.oxp` files, over stdio (pygls + lsprotocol).

Contract: as a document is opened, changed or saved, its diagnostics are published —
the codes, messages and spans `oxdeai check` prints, warnings included. Hover shows a
declaration (a tool's signature, a state's type, key and window, a rule and the tools
it applies to, a parameter's type); go to definition and find references work for
tools, parameters, agent fields, states, limits, consts, rules, invariants and
assertions (lsp/index.py); formatting answers the text `oxdeai fmt` writes (nothing
for a file that does not parse); a "did you mean" diagnostic comes with a quick fix
that puts the suggestion in place. Positions are converted between the protocol's
UTF-16 columns and the checker's code points. A file that does not parse keeps the
symbols of its last version that did, so hover and navigation survive a typo.
"""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from oxdeai import __version__
from oxdeai.dsl import ast as A
from oxdeai.dsl.diagnostics import Diagnostic, Severity
from oxdeai.dsl.formatter import format_policy
from oxdeai.dsl.parser import parse_source
from oxdeai.dsl.policy import compile_source
from oxdeai.lsp.index import SymbolIndex

SUGGESTION = re.compile(r"`([^`]+)`[^`]*\(did you mean `([^`]+)`\?\)")
SEVERITY = {Severity.ERROR: T.DiagnosticSeverity.Error, Severity.WARNING: T.DiagnosticSeverity.Warning}

server = LanguageServer("oxdeai", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Full)
_indexes: dict[str, SymbolIndex] = {}


# ---- positions: the checker's 1-based code-point columns, the protocol's 0-based UTF-16 ----


def to_position(lines: list[str], line: int, column: int) -> T.Position:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return T.Position(line=max(line - 1, 0), character=len(text[:max(column - 1, 0)].encode("utf-16-le")) // 2)


def from_position(lines: list[str], position: T.Position) -> tuple[int, int]:
    text = lines[position.line] if position.line < len(lines) else ""
    units, column = 0, 0
    while column < len(text) and units < position.character:
        units += 2 if ord(text[column]) > 0xFFFF else 1
        column += 1
    return position.line + 1, column + 1


def to_range(lines: list[str], span: A.Span) -> T.Range:
    return T.Range(start=to_position(lines, span.line, span.column),
                   end=to_position(lines, span.end_line, span.end_column))


# ---- diagnostics ------------------------------------------------------------------------


def diagnostics_of(text: str, uri: str) -> list[T.Diagnostic]:
    lines = text.splitlines()
    _, found = compile_source(text, uri)
    return [_diagnostic(lines, d) for d in found]


def _diagnostic(lines: list[str], d: Diagnostic) -> T.Diagnostic:
    message = d.message + (f"\n{d.help}" if d.help else "")
    return T.Diagnostic(range=to_range(lines, d.span), message=message, code=d.code, source="oxdeai",
                        severity=SEVERITY.get(d.severity, T.DiagnosticSeverity.Information))


def _refresh(ls: LanguageServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    parsed = parse_source(document.source)
    if parsed.policy is not None:
        _indexes[uri] = SymbolIndex.of(parsed.policy)
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(
        uri=uri, version=document.version, diagnostics=diagnostics_of(document.source, uri)))


@server.feature(T.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: T.DidOpenTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: T.DidChangeTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LanguageServer, params: T.DidSaveTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LanguageServer, params: T.DidCloseTextDocumentParams) -> None:
    _indexes.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


# ---- navigation -------------------------------------------------------------------------


def _symbol_at(ls: LanguageServer, uri: str, position: T.Position) -> tuple[SymbolIndex, Any, list[str]] | None:
    index = _indexes.get(uri)
    if index is None:
        return None
    lines = ls.workspace.get_text_document(uri).source.splitlines()
    symbol = index.at(*from_position(lines, position))
    return None if symbol is None else (index, symbol, lines)


@server.feature(T.TEXT_DOCUMENT_HOVER)
def hover(ls: LanguageServer, params: T.HoverParams) -> T.Hover | None:
    found = _symbol_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    index, symbol, _ = found
    text = index.hover(symbol)
    if text is None:
        return None
    head, _, rest = text.partition("\n\n")
    value = f"```oxp\n{head}\n```" + (f"\n\n{rest}" if rest else "")
    return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=value))


@server.feature(T.TEXT_DOCUMENT_DEFINITION)
def definition(ls: LanguageServer, params: T.DefinitionParams) -> T.Location | None:
    found = _symbol_at(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    index, symbol, lines = found
    span = index.definition(symbol)
    return None if span is None else T.Location(uri=params.text_document.uri, range=to_range(lines, span))


@server.feature(T.TEXT_DOCUMENT_REFERENCES)
def references(ls: LanguageServer, params: T.ReferenceParams) -> list[T.Location]:
    found = _symbol_at(ls, params.text_document.uri, params.position)
    if found is None:
        return []
    index, symbol, lines = found
    return [T.Location(uri=params.text_document.uri, range=to_range(lines, span))
            for span in index.references(symbol, params.context.include_declaration)]


# ---- editing ----------------------------------------------------------------------------


@server.feature(T.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: LanguageServer, params: T.DocumentFormattingParams) -> list[T.TextEdit] | None:
    text = ls.workspace.get_text_document(params.text_document.uri).source
    parsed = parse_source(text)
    if parsed.policy is None:
        return None
    formatted = format_policy(parsed.policy, parsed.comments, text)
    if formatted == text:
        return []
    lines = text.splitlines()
    whole = T.Range(start=T.Position(line=0, character=0), end=T.Position(line=len(lines) + 1, character=0))
    return [T.TextEdit(range=whole, new_text=formatted)]


@server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix]))
def code_actions(ls: LanguageServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    uri = params.text_document.uri
    lines = ls.workspace.get_text_document(uri).source.splitlines()
    actions = []
    for diagnostic in params.context.diagnostics:
        edit = did_you_mean_edit(lines, diagnostic)
        if edit is not None:
            actions.append(T.CodeAction(title=f"Change to `{edit.new_text}`", kind=T.CodeActionKind.QuickFix,
                                        diagnostics=[diagnostic], is_preferred=True,
                                        edit=T.WorkspaceEdit(changes={uri: [edit]})))
    return actions


def did_you_mean_edit(lines: list[str], diagnostic: T.Diagnostic) -> T.TextEdit | None:
    """The edit that replaces the unknown name a diagnostic names with its suggestion."""
    found = SUGGESTION.search(diagnostic.message)
    start, end = diagnostic.range.start, diagnostic.range.end
    if found is None or start.line != end.line or start.line >= len(lines):
        return None
    wrong, right = found.groups()
    first = from_position(lines, start)[1] - 1
    last = from_position(lines, end)[1] - 1
    at = lines[start.line].rfind(wrong, first, last)
    if at < 0:
        return None
    return T.TextEdit(range=T.Range(start=to_position(lines, start.line + 1, at + 1),
                                    end=to_position(lines, start.line + 1, at + 1 + len(wrong))), new_text=right)


def main() -> None:
    server.start_io()
