"""The meaning of the language's operators and functions, defined once.

Contract: these are the exact semantics of docs/language.md. The runtime calls
them; the checker uses them to fold constants; the verifier's encoding mirrors
them case for case. Integers are unbounded; `/` floors and `%` is in [0, d) for a
positive divisor d; strings compare by code point.
"""

from __future__ import annotations

from typing import Any

from oxdeai.dsl.ast import BinOp, Func


def hour(t: int) -> int:
    return (t // 3600) % 24


def weekday(t: int) -> int:
    """Monday is 0; 1970-01-01 was a Thursday."""
    return ((t // 86400) + 3) % 7


def apply_func(func: Func, args: list[Any]) -> int:
    match func:
        case Func.LEN:
            return len(args[0])
        case Func.MIN:
            return min(args[0], args[1])
        case Func.MAX:
            return max(args[0], args[1])
        case Func.ABS:
            return abs(args[0])
        case Func.HOUR:
            return hour(args[0])
        case Func.WEEKDAY:
            return weekday(args[0])
    raise AssertionError(func)


def arith(op: BinOp, a: int, b: int) -> int:
    match op:
        case BinOp.ADD:
            return a + b
        case BinOp.SUB:
            return a - b
        case BinOp.MUL:
            return a * b
        case BinOp.DIV:
            return a // b
        case BinOp.MOD:
            return a % b
    raise AssertionError(op)


def compare(op: BinOp, a: Any, b: Any) -> bool:
    match op:
        case BinOp.EQ:
            return bool(a == b)
        case BinOp.NE:
            return bool(a != b)
        case BinOp.LT:
            return bool(a < b)
        case BinOp.LE:
            return bool(a <= b)
        case BinOp.GT:
            return bool(a > b)
        case BinOp.GE:
            return bool(a >= b)
        case BinOp.STARTSWITH:
            return bool(a.startswith(b))
        case BinOp.ENDSWITH:
            return bool(a.endswith(b))
        case BinOp.CONTAINS:
            return b in a
    raise AssertionError(op)
