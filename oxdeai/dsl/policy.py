"""Loading a policy: read, parse, check, desugar -> `CheckedPolicy`, or `PolicyError`.

Contract: `load_policy` either returns a policy whose every stage passed with no
error diagnostic, or raises `PolicyError` carrying all the diagnostics (sorted,
capped). Reading problems (missing, not UTF-8, empty, huge, a directory) are
diagnostics too, never tracebacks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from oxdeai.dsl import ast as A
from oxdeai.dsl.check import ConstValue, check_policy
from oxdeai.dsl.desugar import Gate, desugar
from oxdeai.dsl.diagnostics import Diagnostic, error, sort_and_cap
from oxdeai.dsl.parser import Comment, parse_source

T = TypeVar("T")

MAX_POLICY_BYTES = 4 * 1024 * 1024


class PolicyError(Exception):
    """A policy failed to load; `diagnostics` says where and why."""

    def __init__(self, path: str, source: str, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.source = source
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else None
        summary = f"{path}:{first.span.line}:{first.span.column}: {first.message}" if first else path
        super().__init__(f"{len([d for d in diagnostics if d.is_error])} error(s) in policy: {summary}")


@dataclass(frozen=True)
class CheckedPolicy:
    """A policy that passed every check, in core form (limits desugared)."""

    path: str
    source: str
    ast: A.Policy
    comments: tuple[Comment, ...]
    warnings: tuple[Diagnostic, ...]
    name: str
    version: str | None
    sha256: str
    agent: tuple[A.Field, ...]
    tools: dict[str, A.ToolDecl]
    consts: dict[str, ConstValue]
    states: dict[str, A.StateDecl]
    effects: tuple[A.EffectDecl, ...]
    gates: tuple[Gate, ...]
    rules: tuple[A.RuleDecl, ...]
    invariants: tuple[A.InvariantDecl, ...]
    asserts: tuple[A.AssertDecl, ...]
    checks: tuple[str, ...]
    nonce_window: int | None
    idempotent: tuple[A.IdempotentDecl, ...]
    extra: dict[str, object] = field(default_factory=dict)  # derived data, built once: see `memo`

    def for_tool(self, tool: str) -> ToolSlice:
        """The declarations that apply to `tool`, computed once per tool: the one answer
        to "which rules, gates and effects does a call to T meet" that the engine's plan
        and the verifier's World both read."""
        slices: dict[str, ToolSlice] = self.memo("tool_slices", dict)
        found = slices.get(tool)
        if found is None:
            found = slices[tool] = ToolSlice.of(self, tool)
        return found

    def memo(self, name: str, build: Callable[[], T]) -> T:
        """What `build()` returns, computed on first use and kept with the policy, so the
        engines and verifier queries over one policy share it (a policy never changes)."""
        if name not in self.extra:
            self.extra[name] = build()
        return self.extra[name]  # type: ignore[return-value]


@dataclass(frozen=True)
class ToolSlice:
    """One tool's part of a policy, every tuple in declaration order."""

    tool: A.ToolDecl
    denies: tuple[A.RuleDecl, ...]
    allows: tuple[A.RuleDecl, ...]
    gates: tuple[Gate, ...]
    effects: tuple[A.EffectDecl, ...]  # applied when the call is allowed
    on_complete: tuple[A.EffectDecl, ...]  # applied when it completes
    idempotent_window: int | None  # seconds; the longest of the `idempotent` declarations naming it
    lease: int | None  # seconds; the shortest lease of its gates
    writes: frozenset[str]  # the states `effects` assign
    completion_writes: frozenset[str]  # the states `on_complete` assigns

    @property
    def completes(self) -> bool:
        """Does a call to this tool wait for a completion (an effect on complete, or a lease)?"""
        return bool(self.on_complete) or self.lease is not None

    @staticmethod
    def of(policy: CheckedPolicy, tool: str) -> ToolSlice:
        def mine(patterns: tuple[A.Pattern, ...]) -> bool:
            return A.matches_any(patterns, tool)

        rules = [r for r in policy.rules if mine(r.patterns)]
        gates = tuple(g for g in policy.gates if mine(g.patterns))
        effects = tuple(e for e in policy.effects if not e.on_complete and mine(e.patterns))
        on_complete = tuple(e for e in policy.effects if e.on_complete and mine(e.patterns))
        windows = [d.window.seconds for d in policy.idempotent if mine(d.patterns)]
        leases = [g.lease.seconds for g in gates if g.lease is not None]
        return ToolSlice(
            tool=policy.tools[tool],
            denies=tuple(r for r in rules if r.kind is A.RuleKind.DENY),
            allows=tuple(r for r in rules if r.kind is A.RuleKind.ALLOW),
            gates=gates, effects=effects, on_complete=on_complete,
            idempotent_window=max(windows) if windows else None,
            lease=min(leases) if leases else None,
            writes=frozenset(a.target for e in effects for a in e.assigns),
            completion_writes=frozenset(a.target for e in on_complete for a in e.assigns),
        )


def read_source(path: str | Path) -> tuple[str | None, list[Diagnostic]]:
    """The text of a policy file, or a diagnostic saying why it cannot be read."""
    p = Path(path)
    where = A.Span(0, 0, 0, 0)
    try:
        if p.is_dir():
            return None, [error("E004", f"`{path}` is a directory, not a policy file", where)]
        size = p.stat().st_size
        if size > MAX_POLICY_BYTES:
            return None, [error("E003", f"the file is {size} bytes; policies are limited to "
                                f"{MAX_POLICY_BYTES} bytes", where)]
        data = p.read_bytes()
    except FileNotFoundError:
        return None, [error("E004", f"no such file `{path}`", where)]
    except OSError as exc:
        return None, [error("E004", f"cannot read `{path}`: {exc.strerror}", where)]
    return decode_source(data)


def decode_source(data: bytes) -> tuple[str | None, list[Diagnostic]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [error("E001", f"the file is not UTF-8 (byte {exc.start} cannot be decoded)",
                            A.Span(line, 1, line, 2), "save the file as UTF-8")]
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None, [error("E002", "the file is empty", A.Span(1, 1, 1, 1),
                            "a policy starts with `policy NAME`")]
    if len(text) > MAX_POLICY_BYTES:
        return None, [error("E003", "the policy is too large", A.Span(1, 1, 1, 1))]
    return text, []


def compile_source(text: str, path: str = "<policy>") -> tuple[CheckedPolicy | None, list[Diagnostic]]:
    """Parse, check and desugar; diagnostics sorted and capped (errors, then warnings)."""
    parsed = parse_source(text)
    if parsed.policy is None:
        return None, sort_and_cap(list(parsed.diagnostics))
    result = check_policy(parsed.policy)
    diagnostics = sort_and_cap(result.diagnostics)
    if any(d.is_error for d in diagnostics):
        return None, diagnostics
    ast = parsed.policy
    env = result.env
    core = desugar(ast, result.bounds)
    nonce = next((d.window.seconds for d in ast.decls if isinstance(d, A.NonceDecl)), None)
    agent = next((d.fields for d in ast.decls if isinstance(d, A.AgentDecl)), ())
    policy = CheckedPolicy(
        path=path,
        source=text,
        ast=ast,
        comments=parsed.comments,
        warnings=tuple(diagnostics),
        name=ast.header.name,
        version=ast.header.version,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        agent=agent,
        tools=env.tools,
        consts=env.consts,
        states={s.name: s for s in core.states},
        effects=core.effects,
        gates=core.gates,
        rules=tuple(d for d in ast.decls if isinstance(d, A.RuleDecl)),
        invariants=core.invariants,
        asserts=tuple(d for d in ast.decls if isinstance(d, A.AssertDecl)),
        checks=tuple(dict.fromkeys(d.name for d in ast.decls if isinstance(d, A.CheckDecl))),
        nonce_window=nonce,
        idempotent=tuple(d for d in ast.decls if isinstance(d, A.IdempotentDecl)),
    )
    return policy, diagnostics


def load_policy(path_or_text: str | Path) -> CheckedPolicy:
    """Load a policy from a path, or from source text (anything starting with `policy`
    after white space and comments, or containing a newline, is taken as text)."""
    if isinstance(path_or_text, Path) or not _looks_like_source(path_or_text):
        path = str(path_or_text)
        text, diagnostics = read_source(path)
    else:
        path = "<policy>"
        text, diagnostics = decode_source(path_or_text.encode("utf-8", "surrogatepass"))
    if text is None:
        raise PolicyError(path, "", diagnostics)
    policy, diagnostics = compile_source(text, path)
    if policy is None:
        raise PolicyError(path, text, diagnostics)
    return policy


def _looks_like_source(s: str) -> bool:
    return "\n" in s or s.lstrip().startswith("policy ")
