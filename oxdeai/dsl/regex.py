"""The regex dialect of `matches`, parsed into a small AST.

Contract: `parse_regex` accepts exactly the dialect of docs/language.md and
raises `RegexError(offset, message)` for anything else (anchors, letter escapes
other than `\\d` / `\\w`, lazy quantifiers, backreferences, lookaround, bounds
over 100). The runtime compiles this AST to RE2 (dsl/regex_linear.py: matching takes
time linear in the subject, whatever the pattern); the verifier to Z3. `.` is any
one code point, newline included; `\\d` and `\\w` are ASCII only. A pattern RE2
cannot build (nested repetition counts whose product exceeds 1000, or a program
over RE2's memory budget) is refused by `check` with the reason, and so is one whose
matching automaton is too large to keep a match cheap (dsl/regex_automaton.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

MAX_REPEAT = 100
MAX_GROUP_DEPTH = 100  # the parser and every walker over the AST recurse once per group
SPECIAL = set("\\.[]()*+?{}|^$")
PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")

DIGIT = ((0x30, 0x39),)
WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))


@dataclass(frozen=True, slots=True)
class RChar:
    code: int


@dataclass(frozen=True, slots=True)
class RAny:
    pass


@dataclass(frozen=True, slots=True)
class RClass:
    negated: bool
    ranges: tuple[tuple[int, int], ...]  # inclusive code point ranges


@dataclass(frozen=True, slots=True)
class RConcat:
    parts: tuple[Regex, ...]


@dataclass(frozen=True, slots=True)
class RAlt:
    branches: tuple[Regex, ...]


@dataclass(frozen=True, slots=True)
class RRepeat:
    node: Regex
    lo: int
    hi: int | None  # None: unbounded


Regex = Union[RChar, RAny, RClass, RConcat, RAlt, RRepeat]


class RegexError(ValueError):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def parse_regex(pattern: str) -> Regex:
    parser = _RegexParser(pattern)
    node = parser.parse_alt()
    if parser.pos != len(pattern):
        raise RegexError(parser.pos, f"unexpected `{pattern[parser.pos]}`")
    return node


class _RegexParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0  # groups open at `pos`

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def parse_alt(self) -> Regex:
        branches = [self.parse_branch()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.parse_branch())
        return branches[0] if len(branches) == 1 else RAlt(tuple(branches))

    def parse_branch(self) -> Regex:
        parts: list[Regex] = []
        while self.peek() not in (None, "|", ")"):
            parts.append(self.parse_piece())
        return parts[0] if len(parts) == 1 else RConcat(tuple(parts))

    def parse_piece(self) -> Regex:
        atom = self.parse_atom()
        ch = self.peek()
        if ch in ("*", "+", "?"):
            self.pos += 1
            node: Regex = RRepeat(atom, 0 if ch != "+" else 1, None if ch != "?" else 1)
        elif ch == "{":
            node = self.parse_bounds(atom)
        else:
            return atom
        if self.peek() in ("*", "+", "?", "{"):
            what = "lazy quantifiers are" if self.peek() == "?" else "a quantifier on a quantifier is"
            raise RegexError(self.pos, f"{what} not part of the dialect")
        return node

    def parse_bounds(self, atom: Regex) -> Regex:
        start = self.pos
        self.pos += 1
        lo = self.parse_number(start)
        hi: int | None = lo
        if self.peek() == ",":
            self.pos += 1
            hi = None if self.peek() == "}" else self.parse_number(start)
        if self.peek() != "}":
            raise RegexError(start, "a repetition is `{m}`, `{m,}` or `{m,n}`")
        self.pos += 1
        if lo > MAX_REPEAT or (hi is not None and (hi > MAX_REPEAT or hi < lo)):
            raise RegexError(start, f"repetition bounds need m <= n <= {MAX_REPEAT}")
        return RRepeat(atom, lo, hi)

    def parse_number(self, start: int) -> int:
        digits = ""
        while (ch := self.peek()) is not None and ch.isascii() and ch.isdigit():
            digits += ch
            self.pos += 1
        if not digits:
            raise RegexError(start, "a repetition is `{m}`, `{m,}` or `{m,n}`")
        return int(digits)

    def parse_atom(self) -> Regex:
        ch = self.peek()
        start = self.pos
        if ch is None:
            raise RegexError(start, "pattern ends too early")
        if ch == ".":
            self.pos += 1
            return RAny()
        if ch == "(":
            self.pos += 1
            self.depth += 1
            if self.depth > MAX_GROUP_DEPTH:
                raise RegexError(start, f"groups nest more than {MAX_GROUP_DEPTH} deep")
            if self.peek() == "?":
                raise RegexError(self.pos, "`(?...)` groups and lookaround are not part of the dialect")
            inner = self.parse_alt()
            if self.peek() != ")":
                raise RegexError(start, "unclosed `(`")
            self.pos += 1
            self.depth -= 1
            return inner
        if ch == "[":
            return self.parse_class()
        if ch == "\\":
            return self.parse_escape()
        if ch in ("^", "$"):
            raise RegexError(start, f"`{ch}` anchors are not part of the dialect: `matches` is always a full match")
        if ch in SPECIAL:
            raise RegexError(start, f"`{ch}` must be escaped as `\\{ch}`")
        self.pos += 1
        return RChar(ord(ch))

    def parse_escape(self) -> Regex:
        start = self.pos
        self.pos += 1
        ch = self.peek()
        if ch is None:
            raise RegexError(start, "a pattern cannot end with `\\`")
        self.pos += 1
        if ch == "d":
            return RClass(False, DIGIT)
        if ch == "w":
            return RClass(False, WORD)
        if ch in PUNCT:
            return RChar(ord(ch))
        raise RegexError(start, f"`\\{ch}` is not part of the dialect (only `\\d`, `\\w` and `\\` before punctuation)")

    def parse_class(self) -> Regex:
        start = self.pos
        self.pos += 1
        negated = False
        if self.peek() == "^":
            negated = True
            self.pos += 1
        ranges: list[tuple[int, int]] = []
        while True:
            ch = self.peek()
            if ch is None:
                raise RegexError(start, "unclosed `[`")
            if ch == "]":
                break
            lo_node = self.parse_class_item()
            if isinstance(lo_node, RClass):
                ranges.extend(lo_node.ranges)
                continue
            lo = lo_node.code
            if self.peek() == "-" and self.pos + 1 < len(self.text) and self.text[self.pos + 1] != "]":
                self.pos += 1
                hi_node = self.parse_class_item()
                if isinstance(hi_node, RClass):
                    raise RegexError(self.pos, "a class range cannot end in `\\d` or `\\w`")
                if hi_node.code < lo:
                    raise RegexError(start, "class range is out of order")
                ranges.append((lo, hi_node.code))
            else:
                ranges.append((lo, lo))
        self.pos += 1
        if not ranges:
            raise RegexError(start, "empty class `[]`")
        return RClass(negated, tuple(sorted(set(ranges))))

    def parse_class_item(self) -> RChar | RClass:
        ch = self.peek()
        assert ch is not None
        if ch == "\\":
            node = self.parse_escape()
            assert isinstance(node, (RChar, RClass))
            return node
        if ch in SPECIAL:
            raise RegexError(self.pos, f"`{ch}` must be escaped as `\\{ch}` inside a class")
        self.pos += 1
        return RChar(ord(ch))
