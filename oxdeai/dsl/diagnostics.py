"""Diagnostics: one dataclass for every problem found in a policy, and its rendering.

Contract: codes are stable (documented in docs/language.md); messages are
lowercase with user text in backticks; `help` says how to fix it when that is
obvious. Rendering is `path:line:col: severity[code]: message`, the source line
and a caret underline.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from oxdeai.dsl.ast import Span

MAX_ERRORS = 50


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    severity: Severity
    message: str
    span: Span
    help: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[int, int, str]:
        return (self.span.line, self.span.column, self.code)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
        }
        if self.help:
            out["help"] = self.help
        return out


def error(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, span, help)


def warning(code: str, message: str, span: Span, help: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.WARNING, message, span, help)


def sort_and_cap(diags: list[Diagnostic], cap: int = MAX_ERRORS) -> list[Diagnostic]:
    """Errors first-by-position, at most `cap` errors; warnings follow, also capped."""
    unique = list(dict.fromkeys(diags))
    errors = sorted((d for d in unique if d.is_error), key=Diagnostic.sort_key)[:cap]
    warnings = sorted((d for d in unique if not d.is_error), key=Diagnostic.sort_key)[:cap]
    return errors + warnings


def render(diag: Diagnostic, path: str, source: str) -> str:
    """Render one diagnostic with its source line and a caret underline."""
    span = diag.span
    head = f"{path}:{span.line}:{span.column}: {diag.severity.value}[{diag.code}]: {diag.message}"
    lines = source.splitlines()
    if span.line < 1 or span.line > len(lines):
        return head + (f"\n   = help: {diag.help}" if diag.help else "")
    text = lines[span.line - 1].replace("\t", " ")
    number = str(span.line)
    pad = " " * len(number)
    start = max(span.column, 1)
    if span.end_line == span.line and span.end_column > start:
        width = span.end_column - start
    else:
        width = max(len(text) - start + 1, 1)
    out = [head, f"{pad} |", f"{number} | {text}", f"{pad} | {' ' * (start - 1)}{'^' * width}"]
    if diag.help:
        out.append(f"{pad} = help: {diag.help}")
    return "\n".join(out)


def did_you_mean(name: str, candidates: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The closest candidate by edit distance, if it is close enough to be a typo."""
    best: str | None = None
    best_distance = max(2, len(name) // 3) + 1
    for candidate in sorted(candidates):
        distance = _edit_distance(name, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
