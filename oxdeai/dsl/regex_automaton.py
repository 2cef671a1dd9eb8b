"""How many states the deterministic automaton of a dialect pattern has, up to a limit.

Contract: `automaton_states(node, limit, max_size)` returns the number of live states
of the deterministic automaton that matches the pattern as a whole (full match, over
code points) and its size (the positions summed over its states), or None when it has
more than `limit` states or a size over `max_size`. The runtime matches with RE2, whose
DFA builds these states as a subject visits them and caches them; while their number
is bounded, every match costs a constant per character once the states are built.
A pattern with more states than RE2 can keep (`[ab]*a[ab]{100}` has 2^100) makes RE2
build a new state at almost every character of an unlucky subject, or fall back to
its NFA simulation, and a match then costs the pattern's size per character: half a
second on a 65,536-character argument. `check` refuses such patterns.

The construction is Glushkov's position automaton: one position per character atom
after counted repetitions are expanded, `follow` sets between positions, then the
subset construction over the alphabet's elementary intervals. A state is the set of
positions that may read the next character plus whether the input so far matches,
which is what RE2 keys its DFA states on. Sets are Python ints used as bit sets.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from functools import partial

from oxdeai.dsl.regex import RAlt, RAny, RChar, RClass, RConcat, Regex, RRepeat

MAX_CODE = 0x10FFFF
MAX_STATES = 2_048  # the states a pattern's automaton may have
MAX_SIZE = 100_000  # the positions summed over those states: what building them all costs
MAX_POSITIONS = 20_000  # far above what RE2 itself compiles (its repetition product is 1000)


class TooManyPositions(Exception):
    """The expanded pattern has more character positions than MAX_POSITIONS."""


def automaton_states(node: Regex, limit: int, max_size: int) -> tuple[int, int] | None:
    positions = _Positions()
    first, last, nullable = positions.build(node)
    symbol_sets = positions.symbol_classes()
    start = (first, nullable)
    seen = {start}
    size = 1 + first.bit_count()
    todo = [first]
    steps: dict[int, tuple[int, bool]] = {}  # positions just read -> the state they lead to
    while todo:
        ready = todo.pop()
        for accepting in symbol_sets:
            read = ready & accepting
            if not read:
                continue
            step = steps.get(read)
            if step is None:
                step = steps[read] = (positions.follow_of(read), bool(read & last))
            if step not in seen:
                seen.add(step)
                size += 1 + step[0].bit_count()
                if len(seen) > limit or size > max_size:
                    return None
                todo.append(step[0])
    return len(seen), size


def accepts(node: Regex, text: str) -> bool:
    """Whether the position automaton matches the whole text: the tests hold it equal to
    RE2, so the states `automaton_states` counts are those of the language RE2 matches."""
    positions = _Positions()
    ready, last, matched = positions.build(node)
    for char in text:
        read = ready & positions.accepting(ord(char))
        if not read:
            return False
        ready, matched = positions.follow_of(read), bool(read & last)
    return matched


class _Positions:
    """The position automaton under construction: what each position accepts (as a set
    of the pattern's character ranges) and which positions may follow it."""

    def __init__(self) -> None:
        self.ranges: list[tuple[tuple[int, int], ...]] = []
        self.follow: list[int] = []

    def build(self, node: Regex) -> tuple[int, int, bool]:
        """(first positions, last positions, matches the empty string) of the node."""
        match node:
            case RChar(code):
                return self._position(((code, code),))
            case RAny():
                return self._position(((0, MAX_CODE),))
            case RClass(negated, ranges):
                return self._position(_complement(ranges) if negated else ranges)
            case RConcat(parts):
                return self._sequence([partial(self.build, part) for part in parts])
            case RAlt(branches):
                first, last, nullable = 0, 0, False
                for branch in branches:
                    f, lst, n = self.build(branch)
                    first, last, nullable = first | f, last | lst, nullable or n
                return first, last, nullable
            case RRepeat(inner, lo, hi):
                if hi == 0:
                    return 0, 0, True
                copies = [partial(self.build, inner)] * lo
                if hi is None:
                    copies.append(partial(self._star, inner))
                else:
                    copies.extend([partial(self._optional, inner)] * (hi - lo))
                return self._sequence(copies)
        raise AssertionError(f"unhandled regex node {node!r}")

    def _position(self, ranges: tuple[tuple[int, int], ...]) -> tuple[int, int, bool]:
        if len(self.follow) >= MAX_POSITIONS:
            raise TooManyPositions
        bit = 1 << len(self.follow)
        self.ranges.append(ranges)
        self.follow.append(0)
        return bit, bit, False

    def _sequence(self, builders: Sequence[Callable[[], tuple[int, int, bool]]]) -> tuple[int, int, bool]:
        first, last, nullable = 0, 0, True
        for build in builders:
            f, lst, n = build()
            self._link(last, f)
            first = first | (f if nullable else 0)
            last = lst | (last if n else 0)
            nullable = nullable and n
        return first, last, nullable

    def _star(self, inner: Regex) -> tuple[int, int, bool]:
        first, last, _ = self.build(inner)
        self._link(last, first)
        return first, last, True

    def _optional(self, inner: Regex) -> tuple[int, int, bool]:
        first, last, _ = self.build(inner)
        return first, last, True

    def _link(self, sources: int, targets: int) -> None:
        if targets:
            for index in _bits(sources):
                self.follow[index] |= targets

    def follow_of(self, read: int) -> int:
        union = 0
        for index in _bits(read):
            union |= self.follow[index]
        return union

    def accepting(self, code: int) -> int:
        return sum(1 << index for index, ranges in enumerate(self.ranges) if any(a <= code <= b for a, b in ranges))

    def symbol_classes(self) -> list[int]:
        """For each class of characters the positions cannot tell apart, the set of
        positions that accept it (distinct sets only)."""
        bounds = sorted({b for ranges in self.ranges for lo, hi in ranges for b in (lo, hi + 1)
                         if b <= MAX_CODE} | {0})
        accepting = [0] * len(bounds)  # per elementary interval starting at bounds[i]
        for index, ranges in enumerate(self.ranges):
            bit = 1 << index
            for lo, hi in ranges:
                for i in range(bisect_left(bounds, lo), bisect_right(bounds, hi)):
                    accepting[i] |= bit
        classes = set(accepting)
        classes.discard(0)
        return sorted(classes)


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    low = 0
    for lo, hi in ranges:
        if lo > low:
            out.append((low, lo - 1))
        low = max(low, hi + 1)
    if low <= MAX_CODE:
        out.append((low, MAX_CODE))
    return tuple(out)


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out
