"""Hypothesis strategies for well-typed expressions over a Scope: the one home of
the expression generators the interpreter, formatter and differential tests share.

A Scope lists the references of each type an expression may use; the strategies
build only expressions the checker accepts over it, biased towards boundaries
(small and edge ints, tricky strings, the regex dialect's corners).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from oxdeai.dsl import ast as A

SMALL_INTS = st.sampled_from([0, 1, -1, 2, 3, 7, 10, 59, 60, 100, 3599, 3600, 86399, 86400, -86401, 10**6])
INTS = st.one_of(SMALL_INTS, st.integers(-(10**6), 10**6))
TEXT_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",), max_codepoint=0x1FFFF)
TEXTS = st.one_of(st.sampled_from(["", "a", "ab", "acct_1", "é", "\u0661", "😀", "a.b", "x\ny", "/srv/docs/a.md"]),
                  st.text(TEXT_ALPHABET, max_size=6))
REGEXES = ["a*", "(ab|c)+", "[a-c]{1,3}", "\\d+", "\\w*", ".", ".*é.*", "[^ab]?x", "(a|)b{2,}", "[\\d\\-]+",
           "acct_\\d{1,2}", "[é😀]*", "(\\.|/)[a-z]+", "a{0,2}(b|c)?",
           # zero repetitions: each means the empty string there, in the engine and the encoding
           "a{0}", "(ab){0,0}", "x(y){0}z?", "(a|b){0,1}c*", "[^a]{0,2}", "(.){0}é?", "a{0,}b{1,1}"]


@dataclass
class Scope:
    ints: list[A.Expr] = field(default_factory=list)
    strs: list[A.Expr] = field(default_factory=list)
    bools: list[A.Expr] = field(default_factory=list)
    enums: list[tuple[A.Expr, tuple[str, ...]]] = field(default_factory=list)
    sets: list[A.Expr] = field(default_factory=list)


def int_expr(scope: Scope, depth: int) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(INTS.map(A.IntLit), *([st.sampled_from(scope.ints)] if scope.ints else []))
    if depth <= 0:
        return leaf
    sub = int_expr(scope, depth - 1)
    return st.one_of(
        leaf,
        sub.filter(lambda e: not isinstance(e, A.IntLit)).map(A.Neg),
        st.builds(A.Binary, st.sampled_from([A.BinOp.ADD, A.BinOp.SUB]), sub, sub),
        st.builds(A.Binary, st.just(A.BinOp.MUL), SMALL_INTS.map(A.IntLit), sub),
        st.builds(A.Binary, st.sampled_from([A.BinOp.DIV, A.BinOp.MOD]), sub,
                  st.sampled_from([1, 2, 3, 7, 60, 3600, 86400]).map(A.IntLit)),
        st.builds(A.If, bool_expr(scope, depth - 1), sub, sub),
        st.builds(A.Call, st.sampled_from(["min", "max"]), st.tuples(sub, sub)),
        st.builds(A.Call, st.sampled_from(["abs", "hour", "weekday"]), st.tuples(sub)),
        st.builds(A.Call, st.just("len"), st.tuples(str_expr(scope, depth - 1))),
    )


def str_expr(scope: Scope, depth: int) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(TEXTS.map(A.StrLit), *([st.sampled_from(scope.strs)] if scope.strs else []))
    if depth <= 0:
        return leaf
    return st.one_of(leaf, st.builds(A.If, bool_expr(scope, depth - 1), str_expr(scope, 0), str_expr(scope, 0)))


def bool_expr(scope: Scope, depth: int) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(st.booleans().map(A.BoolLit), *([st.sampled_from(scope.bools)] if scope.bools else []))
    if depth <= 0:
        return leaf
    sub = bool_expr(scope, depth - 1)
    i, s = int_expr(scope, depth - 1), str_expr(scope, depth - 1)
    ordering = st.sampled_from(sorted(A.COMPARE_OPS, key=lambda o: o.value))
    options = [
        leaf, sub.map(A.Not),
        st.builds(A.Binary, st.sampled_from([A.BinOp.AND, A.BinOp.OR]), sub, sub),
        st.builds(A.Binary, ordering, i, i),
        st.builds(A.Binary, ordering, s, s),
        st.builds(A.Binary, st.sampled_from([A.BinOp.STARTSWITH, A.BinOp.ENDSWITH, A.BinOp.CONTAINS]), s,
                  TEXTS.map(A.StrLit) | s),
        st.builds(lambda x, lo, hi, n: A.In(x, A.RangeSet(A.IntLit(lo), A.IntLit(hi)), n), i, INTS, INTS,
                  st.booleans()),
        st.builds(lambda x, items, n: A.In(x, A.SetLit(tuple(A.StrLit(t) for t in items)), n), s,
                  st.lists(TEXTS, min_size=1, max_size=3), st.booleans()),
        st.builds(A.Matches, s, st.sampled_from(REGEXES)),
        st.builds(A.If, sub, sub, sub),
    ]
    if scope.sets:
        options.append(st.builds(lambda x, c, n: A.In(x, c, n), s, st.sampled_from(scope.sets), st.booleans()))
    if scope.enums:
        options.append(st.builds(lambda pair, k, eq: A.Binary(A.BinOp.EQ if eq else A.BinOp.NE, pair[0],
                                                                A.StrLit(pair[1][k % len(pair[1])])),
                                 st.sampled_from(scope.enums), st.integers(0, 5), st.booleans()))
    return st.one_of(*options)
