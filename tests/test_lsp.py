"""`oxdeai lsp` driven through the protocol: pygls' own client starts the command as an
editor does (a subprocess speaking JSON-RPC over stdio) and asks what an editor asks."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

T = pytest.importorskip("lsprotocol.types")
pytest.importorskip("pygls")

from pygls.lsp.client import LanguageClient  # noqa: E402

from oxdeai.dsl.formatter import format_policy  # noqa: E402
from oxdeai.dsl.parser import parse_source  # noqa: E402
from oxdeai.dsl.policy import compile_source  # noqa: E402
from oxdeai.lsp.index import SymbolIndex  # noqa: E402
from tests.conftest import EXAMPLES, ROOT  # noqa: E402

URI = "file:///work/shop.oxp"
BROKEN = """policy shop version "1"
agent {
  id: string,
}
tool pay.charge(amount: int[1..1000], to: string)
state spent: int = 0 per agent.id every 1d
allow charge on pay.charge when args.amout <= 60 and spnt < 100
"""


class Editor:
    """An LSP client with the diagnostics the server published, per document."""

    def __init__(self) -> None:
        self.client = LanguageClient("oxdeai-tests", "1")
        self.published: dict[str, asyncio.Queue[list[Any]]] = {}

        @self.client.feature(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: Any) -> None:
            self.published.setdefault(params.uri, asyncio.Queue()).put_nowait(params.diagnostics)

    async def open(self, text: str, uri: str = URI) -> list[Any]:
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="oxp", version=1, text=text)))
        return await self.diagnostics(uri)

    async def change(self, text: str, version: int, uri: str = URI) -> list[Any]:
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)]))
        return await self.diagnostics(uri)

    async def diagnostics(self, uri: str = URI) -> list[Any]:
        return await asyncio.wait_for(self.published.setdefault(uri, asyncio.Queue()).get(), 30)

    def at(self, line: int, character: int, uri: str = URI) -> dict[str, Any]:
        return {"text_document": T.TextDocumentIdentifier(uri=uri),
                "position": T.Position(line=line, character=character)}


async def with_editor(body: Callable[[Editor], Coroutine[Any, Any, None]]) -> None:
    editor = Editor()
    await editor.client.start_io(sys.executable, "-m", "oxdeai.cli", "lsp", cwd=str(ROOT))
    try:
        result = await asyncio.wait_for(editor.client.initialize_async(T.InitializeParams(
            capabilities=T.ClientCapabilities(), process_id=None, root_uri=None)), 60)
        assert result.server_info is not None and result.server_info.name == "oxdeai"
        editor.client.initialized(T.InitializedParams())
        await body(editor)
    finally:
        await asyncio.wait_for(editor.client.shutdown_async(None), 30)
        editor.client.exit(None)
        await asyncio.wait_for(editor.client.stop(), 30)


def run(body: Callable[[Editor], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(with_editor(body))


def test_diagnostics_as_you_type_are_the_checkers() -> None:
    async def body(editor: Editor) -> None:
        found = await editor.open(BROKEN)
        expected = compile_source(BROKEN)[1]
        assert [(d.code, d.range.start.line + 1, d.range.start.character + 1) for d in found] == \
            [(d.code, d.span.line, d.span.column) for d in expected]
        assert {d.code for d in found} == {"E203", "E201"} and all(d.source == "oxdeai" for d in found)
        fixed = BROKEN.replace("args.amout", "args.amount").replace("spnt", "spent")
        assert list(await editor.change(fixed, 2)) == []
        syntax = await editor.change(fixed + "allow on\n", 3)
        assert [d.code for d in syntax] == [compile_source(fixed + "allow on\n")[1][0].code]
    run(body)


SHOP = (EXAMPLES / "shop.oxp").read_text(encoding="utf-8")
SHOP_LINES = SHOP.splitlines()


def line_of(prefix: str) -> int:
    """The 0-based line of examples/shop.oxp that starts with `prefix`."""
    return next(i for i, line in enumerate(SHOP_LINES) if line.startswith(prefix))


def test_hover_definition_and_references() -> None:
    text, lines = SHOP, SHOP_LINES
    rule_line = line_of("allow charge")
    use = lines[rule_line].index("pay.charge")
    amount = lines[rule_line].index("args.amount") + len("args.")

    async def body(editor: Editor) -> None:
        assert list(await editor.open(text)) == []
        hover = await editor.client.text_document_hover_async(T.HoverParams(**editor.at(rule_line, use + 2)))
        assert hover is not None and "tool pay.charge(amount: int[1..1000], to: string, note: string = \"none\")" \
            in hover.contents.value
        on_param = await editor.client.text_document_hover_async(T.HoverParams(**editor.at(rule_line, amount)))
        assert "amount: int[1..1000]" in on_param.contents.value and "parameter of `pay.charge`" in \
            on_param.contents.value
        on_rule = await editor.client.text_document_hover_async(T.HoverParams(**editor.at(rule_line, 7)))
        assert "on `pay.charge`" in on_rule.contents.value
        where = await editor.client.text_document_definition_async(T.DefinitionParams(**editor.at(rule_line, use)))
        assert where.range.start.line == line_of("tool pay.charge") and where.range.start.character == len("tool ")
        found = await editor.client.text_document_references_async(T.ReferenceParams(
            **editor.at(line_of("state spent"), len("state s")), context=T.ReferenceContext(include_declaration=True)))
        spent_lines = sorted(i for i, line in enumerate(lines) if "spent" in line and not line.startswith("#"))
        assert sorted({r.range.start.line for r in found}) == spent_lines
    run(body)


def test_navigation_survives_a_typo_that_breaks_the_parse() -> None:
    text, lines = SHOP, SHOP_LINES
    rule_line = line_of("allow charge")
    use = lines[rule_line].index("pay.charge")

    async def body(editor: Editor) -> None:
        await editor.open(text)
        broken = await editor.change(text + "allow when (\n", 2)  # half-typed: a syntax error
        assert [d.code for d in broken] == [compile_source(text + "allow when (\n")[1][0].code]
        where = await editor.client.text_document_definition_async(T.DefinitionParams(**editor.at(rule_line, use)))
        assert where is not None and lines[where.range.start.line].startswith("tool pay.charge")
        edits = await editor.client.text_document_formatting_async(T.DocumentFormattingParams(
            text_document=T.TextDocumentIdentifier(uri=URI), options=T.FormattingOptions(tab_size=2, insert_spaces=True)))
        assert edits is None  # a file that does not parse is not reformatted
    run(body)


def test_formatting_returns_the_canonical_text_and_a_quick_fix_applies_the_suggestion() -> None:
    messy = "policy   shop\ntool t(a:int)\nallow   r on t when args.a>1\n"
    parsed = parse_source(messy)
    assert parsed.policy is not None
    canonical = format_policy(parsed.policy, parsed.comments, messy)

    async def body(editor: Editor) -> None:
        await editor.open(messy)
        edits = await editor.client.text_document_formatting_async(T.DocumentFormattingParams(
            text_document=T.TextDocumentIdentifier(uri=URI), options=T.FormattingOptions(tab_size=2, insert_spaces=True)))
        assert len(edits) == 1 and edits[0].new_text == canonical and canonical != messy
        found = await editor.change(BROKEN, 2)
        actions = await editor.client.text_document_code_action_async(T.CodeActionParams(
            text_document=T.TextDocumentIdentifier(uri=URI), range=found[0].range,
            context=T.CodeActionContext(diagnostics=found)))
        assert [a.title for a in actions] == ["Change to `amount`", "Change to `spent`"]
        fixed = BROKEN
        edits = [edit for action in actions for edit in action.edit.changes[URI]]
        for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
            fixed = apply(fixed, edit)  # as an editor applies them: each against the text as it was
        assert compile_source(fixed)[1] == [] and "args.amount <= 60 and spent < 100" in fixed
    run(body)


def apply(text: str, edit: Any) -> str:
    """One single-line text edit (ASCII text: code units are characters)."""
    lines = text.split("\n")
    start, end = edit.range.start, edit.range.end
    line = lines[start.line]
    lines[start.line] = line[:start.character] + edit.new_text + line[end.character:]
    return "\n".join(lines)


def test_the_index_resolves_every_declaration_kind() -> None:
    kinds: set[str] = set()
    for path in sorted(EXAMPLES.glob("*.oxp")):
        parsed = parse_source(path.read_text(encoding="utf-8"))
        assert parsed.policy is not None
        index = SymbolIndex.of(parsed.policy)
        kinds |= {kind for kind, _ in index.definitions}
        for symbol in index.definitions:
            assert index.hover(symbol), symbol
            assert index.at(index.definitions[symbol].line, index.definitions[symbol].column) == symbol
        used = {symbol for symbol, _ in index.uses}
        assert used <= set(index.definitions), path  # every use resolves to a declaration
    assert kinds == {"tool", "param", "agent", "state", "limit", "const", "rule", "assert"}
    parsed = parse_source("policy p\nstate s: int = 0\ninvariant s_small: s <= 5\n")
    assert parsed.policy is not None
    index = SymbolIndex.of(parsed.policy)
    assert index.hover(("invariant", "s_small")) == "invariant s_small: s <= 5"
    assert index.references(("state", "s"), include_declaration=False)[0].line == 3


def test_positions_count_utf16_units_as_editors_do() -> None:
    from oxdeai.lsp.server import from_position, to_position
    lines = ['const greeting = "😀é" # x']
    position = to_position(lines, 1, lines[0].index("#") + 1)
    assert position.character == lines[0].index("#") + 1  # the emoji is two UTF-16 units
    assert from_position(lines, position) == (1, lines[0].index("#") + 1)


def textmate_scopes(grammar: dict[str, Any], line: str) -> list[tuple[str, str]]:
    """(text, scope) for each token TextMate's rule would give one line: at each place
    the earliest match of the patterns wins (the first listed on a tie), with Oniguruma,
    the regex engine TextMate and VS Code use. Enough for this grammar's `match` rules
    and its one `begin`/`end` string rule."""
    onig = pytest.importorskip("onigurumacffi")

    def flat(patterns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for p in patterns:
            if "include" in p:
                out += flat([grammar["repository"][p["include"][1:]]])
            elif "patterns" in p and "match" not in p and "begin" not in p:
                out += flat(p["patterns"])
            else:
                out.append(p)
        return out

    rules = flat(grammar["patterns"])
    tokens, at = [], 0
    while at < len(line):
        best = None
        for rule in rules:
            found = onig.compile(rule.get("match") or rule["begin"]).search(line, at)
            if found is not None and (best is None or found.start() < best[1].start()):
                best = (rule, found)
        if best is None:
            break
        rule, found = best
        if "begin" in rule:
            end = onig.compile(rule["end"]).search(line, found.end())
            stop = end.end() if end is not None else len(line)
            tokens.append((line[found.start():stop], rule["name"]))
            at = stop
            continue
        if "captures" in rule:
            for group, capture in sorted(rule["captures"].items()):
                tokens.append((found.group(int(group)), capture["name"]))
        else:
            tokens.append((found.group(0), rule["name"]))
        at = max(found.end(), at + 1)
    return tokens


def test_the_textmate_grammar_highlights_what_the_language_means() -> None:
    import json
    import re
    grammar = json.loads((ROOT / "editors" / "vscode" / "syntaxes" / "oxp.tmLanguage.json").read_text(encoding="utf-8"))
    assert grammar["scopeName"] == "source.oxp" and grammar["fileTypes"] == ["oxp"]
    lark = (ROOT / "oxdeai" / "grammar" / "oxp.lark").read_text(encoding="utf-8")
    keywords = set(re.findall(r'"([a-z_]+)"', lark))
    scoped = dict(textmate_scopes(grammar, " ".join(sorted(keywords))))
    assert {k for k in keywords if not scoped.get(k, "").startswith(("keyword", "storage", "constant", "variable"))} \
        == set()
    tokens = textmate_scopes(grammar, 'allow charge on pay.charge when args.amount <= 60 and agent.tier == "pro" # x')
    assert tokens[:2] == [("allow", "keyword.declaration.oxp"), ("charge", "entity.name.oxp")]
    assert ("when", "keyword.control.oxp") in tokens and ("60", "constant.numeric.integer.oxp") in tokens
    assert ('"pro"', "string.quoted.double.oxp") in tokens and ("# x", "comment.line.number-sign.oxp") in tokens
    assert ("amount", "variable.other.member.oxp") in tokens
    assert ("1d", "constant.numeric.duration.oxp") in textmate_scopes(grammar, "state spent: int = 0 every 1d")
    for path in sorted(EXAMPLES.glob("*.oxp")):  # a comment is only a comment; a declaration names itself
        for line in path.read_text(encoding="utf-8").splitlines():
            tokens = textmate_scopes(grammar, line)
            if line.startswith("#"):
                assert tokens == [(line, "comment.line.number-sign.oxp")]
            elif line.split(" ", 1)[0] in ("allow", "deny", "state", "limit", "tool", "const", "assert"):
                assert tokens[0] == (line.split(" ", 1)[0], "keyword.declaration.oxp") and \
                    tokens[1][1] == "entity.name.oxp", line
