"""The dialect compiled for the engine: RE2, whose matching takes time linear in the
subject whatever the pattern, behind a size check that keeps the constant small.

Contract: `compile_linear(pattern)` returns an RE2 object (use `.fullmatch`) or raises
`RegexError` for a pattern outside the dialect, one RE2 cannot build (nested
repetition counts whose product exceeds 1000, or a program over RE2's memory budget),
or one whose matching automaton is too large to keep a match cheap
(dsl/regex_automaton.py). `check` reports the same refusal as E306.
"""

from __future__ import annotations

from typing import Any

import re2

from oxdeai.dsl.regex import RAlt, RAny, RChar, RClass, RConcat, Regex, RegexError, RRepeat, parse_regex
from oxdeai.dsl.regex_automaton import MAX_SIZE, MAX_STATES, TooManyPositions, automaton_states

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.dot_nl = True  # `.` is any code point, newline included
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 32 << 20  # room to cache every state check allows: a full cache falls back to the NFA
_LINEAR: dict[str, Any] = {}


def compile_linear(pattern: str) -> Any:
    """The dialect pattern compiled by RE2 (use `.fullmatch`); raises RegexError when the
    pattern is outside the dialect, too big for RE2, or its automaton too large. Cached
    per pattern text."""
    compiled = _LINEAR.get(pattern)
    if compiled is None:
        node = parse_regex(pattern)
        source = to_re2(node)
        try:
            compiled = re2.compile(source, _RE2_OPTIONS)
        except re2.error as exc:
            detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) \
                else str(exc)
            raise RegexError(0, f"the pattern is too big for the linear-time matcher ({detail}); nested "
                                f"repetition counts multiply, and their product may be at most 1000") from None
        _refuse_large_automaton(node)
        _LINEAR[pattern] = compiled
    return compiled


def _refuse_large_automaton(node: Regex) -> None:
    """RE2 matches in time linear in the subject, but the constant is the size of the
    automaton states a subject visits: bounded states keep a match on a 65,536-character
    argument well under a millisecond once built, unbounded ones cost the pattern's size
    per character (docs/language.md, "Regex")."""
    try:
        found = automaton_states(node, MAX_STATES, MAX_SIZE)
    except TooManyPositions:
        found = None
    if found is None:
        raise RegexError(0, f"the pattern's matching automaton is too large (over {MAX_STATES:,} states or "
                            f"{MAX_SIZE:,} positions in all): every character of an argument could cost "
                            f"time in proportion to the pattern; count fewer characters after an "
                            f"open-ended `*`, `+` or `.*` (`[ab]*a[ab]{{100}}` is refused, "
                            f"`[ab]*a[ab]{{5}}` is fine)")


def to_re2(node: Regex) -> str:
    """RE2 source for the node: every character but an ASCII letter or digit is written
    as `\\x{HEX}`, so nothing in the subject's alphabet can read as syntax."""
    match node:
        case RChar(code):
            return _re2_char(code)
        case RAny():
            return "."
        case RClass(negated, ranges):
            body = "".join(_re2_char(lo) if lo == hi else f"{_re2_char(lo)}-{_re2_char(hi)}" for lo, hi in ranges)
            return f"[{'^' if negated else ''}{body}]"
        case RConcat(parts):
            return "".join(f"(?:{to_re2(p)})" if isinstance(p, RAlt) else to_re2(p) for p in parts) \
                if parts else "(?:)"
        case RAlt(branches):
            return "|".join(to_re2(b) or "(?:)" for b in branches)
        case RRepeat(inner, lo, hi):
            base = f"(?:{to_re2(inner)})"
            if hi == 0:
                return "(?:)"  # exactly zero repetitions: the empty string
            return base + ("*" if (lo, hi) == (0, None) else f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}")
    raise AssertionError(f"unhandled regex node {node!r}")


def _re2_char(code: int) -> str:
    return chr(code) if code < 128 and chr(code).isalnum() else f"\\x{{{code:X}}}"
