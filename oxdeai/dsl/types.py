"""Value domains and the checker's types: the one definition the checker, the
request schema, the engine and the verifier all import.

Contract: a request value of type `int[lo..hi]` lies in `int_bounds(lo, hi)`; a string
holds at most MAX_STRING code points; every int a decision shows (arguments, state
values, effects) lies within ±MAX_SAFE_INT, so canonical JSON is exactly RFC 8785.
OUTCOMES are the values `outcome` takes in an `on complete` effect; a host reports
only HOST_OUTCOMES (`expired` is the engine's own, when a lease passes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from oxdeai.dsl import ast as A

MAX_SAFE_INT = 2**53 - 1
MAX_STRING = 65_536

HOST_OUTCOMES = ("ok", "failed")
EXPIRED = "expired"
OUTCOMES = (*HOST_OUTCOMES, EXPIRED)


def int_bounds(lo: int | None, hi: int | None) -> tuple[int, int]:
    """The values an `int[lo..hi]` parameter accepts (open ends are the safe-int range)."""
    low = -MAX_SAFE_INT if lo is None else max(lo, -MAX_SAFE_INT)
    high = MAX_SAFE_INT if hi is None else min(hi, MAX_SAFE_INT)
    return low, high


def in_int_domain(value: object) -> bool:
    """An int a decision can show (bools are not ints here)."""
    return type(value) is int and -MAX_SAFE_INT <= value <= MAX_SAFE_INT


def is_time(value: object) -> bool:
    """A time: an int number of Unix seconds from 0 to MAX_SAFE_INT."""
    return type(value) is int and 0 <= value <= MAX_SAFE_INT


ConstValue = int | str | bool | frozenset[int] | frozenset[str]


class Base(enum.Enum):
    INT = "int"
    BOOL = "bool"
    STR = "string"
    SET = "set"


@dataclass(frozen=True)
class Ty:
    """An expression's type as the checker sees it."""

    base: Base
    enum: frozenset[str] | None = None  # for strings drawn from an enum
    elem: Base | None = None  # for sets
    const: ConstValue | None = None  # value when known at load time

    def __str__(self) -> str:
        if self.base is Base.SET:
            return f"set of {self.elem.value if self.elem else '?'}"
        return self.base.value


INT = Ty(Base.INT)
BOOL = Ty(Base.BOOL)
STR = Ty(Base.STR)


def type_of_field(t: A.Type) -> Ty:
    match t:
        case A.IntType():
            return INT
        case A.BoolType():
            return BOOL
        case A.StringType():
            return STR
        case A.EnumType(values):
            return Ty(Base.STR, enum=frozenset(values))
    raise AssertionError(t)
