"""The regex dialect of `matches`, parsed into a small AST.

Contract: `parse_regex` accepts exactly the dialect of docs/language.md and
raises `RegexError(offset, message)` for anything else (anchors, letter escapes
other than `\\d` / `\\w`, lazy quantifiers, backreferences, lookaround, bounds
over 100). The runtime compiles this AST to Python `re`; the verifier to Z3. `.`
is any one code point, newline included; `\\d` and `\\w` are ASCII only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

MAX_REPEAT = 100
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
            if self.peek() == "?":
                raise RegexError(self.pos, "`(?...)` groups and lookaround are not part of the dialect")
            inner = self.parse_alt()
            if self.peek() != ")":
                raise RegexError(start, "unclosed `(`")
            self.pos += 1
            return inner
        if ch == "[":
            return self.parse_class()
        if ch == "\\":
            return self.parse_escape(in_class=False)
        if ch in ("^", "$"):
            raise RegexError(start, f"`{ch}` anchors are not part of the dialect: `matches` is always a full match")
        if ch in SPECIAL:
            raise RegexError(start, f"`{ch}` must be escaped as `\\{ch}`")
        self.pos += 1
        return RChar(ord(ch))

    def parse_escape(self, in_class: bool) -> Regex:
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
            node = self.parse_escape(in_class=True)
            assert isinstance(node, (RChar, RClass))
            return node
        if ch in SPECIAL:
            raise RegexError(self.pos, f"`{ch}` must be escaped as `\\{ch}` inside a class")
        self.pos += 1
        return RChar(ord(ch))


def to_python(node: Regex) -> str:
    """Python `re` source for the node; compile with re.DOTALL and use fullmatch."""
    match node:
        case RChar(code):
            return _py_char(code)
        case RAny():
            return "."
        case RClass(negated, ranges):
            body = "".join(_py_char(lo) if lo == hi else f"{_py_char(lo)}-{_py_char(hi)}" for lo, hi in ranges)
            return f"[{'^' if negated else ''}{body}]"
        case RConcat(parts):
            return "".join(_py_group(p) if isinstance(p, RAlt) else to_python(p) for p in parts)
        case RAlt(branches):
            return "|".join(to_python(b) for b in branches)
        case RRepeat(inner, lo, hi):
            base = to_python(inner)
            if not isinstance(inner, (RChar, RAny, RClass)):
                base = f"(?:{base})"
            if (lo, hi) == (0, None):
                return base + "*"
            if (lo, hi) == (1, None):
                return base + "+"
            if (lo, hi) == (0, 1):
                return base + "?"
            return base + (f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}")
    raise AssertionError(f"unhandled regex node {node!r}")


def _py_group(node: Regex) -> str:
    return f"(?:{to_python(node)})"


def _py_char(code: int) -> str:
    return "\\" + chr(code) if chr(code) in "\\^-[]." or not chr(code).isalnum() and code < 128 else chr(code)
