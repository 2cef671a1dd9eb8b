"""What the language server knows of one `.oxp` file: where each name is declared, where
it is used, and what a hover says of it. Pure: no editor protocol here (lsp/server.py).

Contract: `SymbolIndex.of(policy)` (a parsed, not necessarily checked, AST) records
every declaration of a tool, parameter, agent field, state, limit, const, rule,
invariant and assertion with its name's span, and every use: a tool pattern (a
wildcard pattern uses every tool it matches), `args.X` and `agent.X`, a bare name in an
expression, an effect's target. `at(line, column)` (1-based, code points) is the
symbol under that place, as a declaration or a use; `definition`, `references` and
`hover` answer for a symbol. A name the checker would reject resolves to nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from oxdeai.dsl import ast as A
from oxdeai.dsl.formatter import format_decl, format_expr, format_type

Symbol = tuple[str, str]  # (kind, name): ("tool", "pay.charge"), ("param", "pay.charge.amount"), ...


@dataclass
class SymbolIndex:
    definitions: dict[Symbol, A.Span] = field(default_factory=dict)
    uses: list[tuple[Symbol, A.Span]] = field(default_factory=list)
    hovers: dict[Symbol, str] = field(default_factory=dict)

    @staticmethod
    def of(policy: A.Policy) -> SymbolIndex:
        index = SymbolIndex()
        index._declare(policy)
        for decl in policy.decls:
            index._use(decl)
        return index

    def at(self, line: int, column: int) -> Symbol | None:
        for symbol, span in [*self.definitions.items(), *self.uses]:
            if _inside(span, line, column):
                return symbol
        return None

    def definition(self, symbol: Symbol) -> A.Span | None:
        return self.definitions.get(symbol)

    def references(self, symbol: Symbol, include_declaration: bool = True) -> list[A.Span]:
        found = [span for used, span in self.uses if used == symbol]
        if include_declaration and symbol in self.definitions:
            found.insert(0, self.definitions[symbol])
        return found

    def hover(self, symbol: Symbol) -> str | None:
        return self.hovers.get(symbol)

    # ---- building -------------------------------------------------------------------

    def _define(self, symbol: Symbol, span: A.Span, hover: str) -> None:
        self.definitions.setdefault(symbol, span)
        self.hovers.setdefault(symbol, hover)

    def _declare(self, policy: A.Policy) -> None:
        self.tools = [d for d in policy.decls if isinstance(d, A.ToolDecl)]
        self.bare: dict[str, str] = {}  # a bare name -> the kind it names (state, limit, const)
        for decl in policy.decls:
            match decl:
                case A.ToolDecl(name=name, params=params):
                    self._define(("tool", name), decl.name_span, format_decl(decl))
                    for p in params:
                        self._define(("param", f"{name}.{p.name}"), p.span,
                                     f"{_field(p)}\n\na parameter of `{name}`")
                case A.AgentDecl(fields=fields):
                    for f in fields:
                        self._define(("agent", f.name), f.span, f"agent.{_field(f)}\n\na trusted field of the agent record")
                case A.StateDecl(name=name):
                    self._bare(name, "state", decl.name_span, format_decl(decl))
                case A.LimitDecl(name=name):
                    self._bare(name, "limit", decl.name_span,
                               f"{format_decl(decl)}\n\non {self._tools_text(decl.patterns)}")
                case A.ConstDecl(name=name):
                    self._bare(name, "const", decl.name_span, format_decl(decl))
                case A.RuleDecl(name=name):
                    self._define(("rule", name), decl.name_span,
                                 f"{format_decl(decl)}\n\non {self._tools_text(decl.patterns)}")
                case A.InvariantDecl(name=name):
                    self._define(("invariant", name), decl.name_span, format_decl(decl))
                case A.AssertDecl(name=name):
                    self._define(("assert", name), decl.name_span,
                                 f"{format_decl(decl)}\n\non {self._tools_text(decl.patterns)}")

    def _bare(self, name: str, kind: str, span: A.Span, hover: str) -> None:
        self.bare.setdefault(name, kind)
        self._define((self.bare[name], name), span, hover)

    def _matching(self, patterns: tuple[A.Pattern, ...]) -> list[str]:
        return [t.name for t in self.tools if A.matches_any(patterns, t.name)]

    def _tools_text(self, patterns: tuple[A.Pattern, ...]) -> str:
        tools = self._matching(patterns)
        return ", ".join(f"`{t}`" for t in tools) if tools else "no declared tool"

    def _use(self, decl: A.Decl) -> None:
        patterns: tuple[A.Pattern, ...] = getattr(decl, "patterns", ())
        for pattern in patterns:
            for tool in self._matching((pattern,)):
                self.uses.append((("tool", tool), pattern.span))
        tools = self._matching(patterns)
        for expr in _exprs_of(decl):
            for node in A.subexpressions(expr):
                self._use_node(node, tools)
        if isinstance(decl, A.EffectDecl):
            for assign in decl.assigns:
                start = assign.span
                target = A.Span(start.line, start.column, start.line, start.column + len(assign.target))
                if assign.target in self.bare:
                    self.uses.append(((self.bare[assign.target], assign.target), target))

    def _use_node(self, node: A.Expr, tools: list[str]) -> None:
        match node:
            case A.Name(name=name) if name in self.bare:
                self.uses.append(((self.bare[name], name), node.span))
            case A.Arg(name=name):
                for tool in tools:
                    if ("param", f"{tool}.{name}") in self.definitions:
                        self.uses.append((("param", f"{tool}.{name}"), node.span))
                        break
            case A.AgentField(name=name) if ("agent", name) in self.definitions:
                self.uses.append((("agent", name), node.span))


def _field(f: A.Field) -> str:
    default = "" if f.default is None else f" = {format_expr(f.default)}"
    return f"{f.name}: {format_type(f.type)}{default}"


def _exprs_of(decl: A.Decl) -> Iterator[A.Expr]:
    """The expressions a declaration holds (its condition, key, amount, bound, values)."""
    for f in dataclasses.fields(decl):  # type: ignore[arg-type]
        value = getattr(decl, f.name)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, A.Assign):
                yield item.value
            elif A.is_expr(item):
                yield item


def _inside(span: A.Span, line: int, column: int) -> bool:
    if span.line == 0:
        return False
    return (span.line, span.column) <= (line, column) < (span.end_line, span.end_column) or \
        (span.line, span.column) == (line, column)
