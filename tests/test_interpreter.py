"""The interpreter: reference evaluator vs compiled closures, exact operator meaning, regex dialect."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oxdeai.dsl import ast as A
from oxdeai.dsl.ops import hour, weekday
from oxdeai.dsl.parser import parse_source
from oxdeai.dsl.regex import RegexError, parse_regex
from oxdeai.runtime.interpreter import Ctx, compile_expr, compile_regex, compile_rules, eval_expr
from tests.strategies.exprs import TEXTS, Scope, bool_expr, int_expr, str_expr

CONSTS = {"trusted": frozenset({"acct_a", "acct_b"}), "cap": 1000}
SCOPE = Scope(ints=[A.Arg("amount"), A.Name("spent"), A.AgentField("depth"), A.Name("time"), A.Name("cap")],
              strs=[A.Arg("to"), A.AgentField("id"), A.ToolRef()], bools=[A.Name("halted")],
              enums=[(A.AgentField("role"), ("a", "b"))], sets=[A.Name("trusted")])


@st.composite
def contexts(draw: st.DrawFn) -> Ctx:
    state = {"spent": draw(st.integers(-(10**6), 10**6)), "halted": draw(st.booleans())}
    return Ctx(
        args={"amount": draw(st.integers(-100, 100_000)), "to": draw(TEXTS)},
        agent={"id": draw(TEXTS), "role": draw(st.sampled_from(["a", "b"])), "depth": draw(st.integers(0, 8))},
        time=draw(st.integers(0, 2**40)),
        tool=draw(st.sampled_from(["pay.send", "pay.refund"])),
        read_state=state.__getitem__,
        consts=CONSTS,
    )


@settings(max_examples=500, deadline=None)
@given(st.one_of(bool_expr(SCOPE, 3), int_expr(SCOPE, 3), str_expr(SCOPE, 2)), contexts())
def test_compiled_closures_agree_with_the_reference_evaluator(expr: A.Expr, ctx: Ctx) -> None:
    assert compile_expr(expr, CONSTS)(ctx) == eval_expr(expr, ctx)


CONDITIONS = st.lists(st.none() | bool_expr(SCOPE, 2), max_size=5)


@settings(max_examples=300, deadline=None)
@given(CONDITIONS, CONDITIONS, contexts())
def test_the_generated_rule_function_is_stages_5_and_6_of_the_reference(
        denies: list[A.Expr | None], allows: list[A.Expr | None], ctx: Ctx) -> None:
    """compile_rules, the function the engine runs per decision: the indices of every
    matching deny rule (a rule without `when` always matches) and, only when none
    matches, of every matching allow rule, in declaration order."""
    def matching(conditions: list[A.Expr | None]) -> list[int]:
        return [i for i, cond in enumerate(conditions) if cond is None or eval_expr(cond, ctx) is True]

    denied = matching(denies)
    assert compile_rules(denies, allows, CONSTS)(ctx) == (denied, [] if denied else matching(allows))


VALUES = ["acct_a", "acct_b", "", "acct", "é😀", "acct_aa"]
SHAPES = [  # the shapes compile_rules looks up in a table
    st.builds(lambda v, flip: A.Binary(A.BinOp.EQ, *((A.StrLit(v), A.Arg("to"))[::-1 if flip else 1])),
              st.sampled_from(VALUES), st.booleans()),
    st.builds(lambda v: A.Binary(A.BinOp.STARTSWITH, A.Arg("to"), A.StrLit(v)), st.sampled_from(VALUES)),
    st.builds(lambda v: A.Binary(A.BinOp.EQ, A.Arg("amount"), A.IntLit(v)), st.integers(-2, 3)),
    st.builds(lambda: A.Binary(A.BinOp.EQ, A.Arg("amount"), A.Name("cap"))),
]
OTHERS = st.none() | bool_expr(SCOPE, 1)  # ones it tries in turn


@st.composite
def rule_lists(draw: st.DrawFn) -> list[A.Expr | None]:
    """Enough rules of one shape to be looked up, among others, in any order."""
    conds = draw(st.lists(st.sampled_from(SHAPES).flatmap(lambda s: s), min_size=8, max_size=20))
    conds = conds + draw(st.lists(st.one_of(*SHAPES, OTHERS), max_size=20))
    return draw(st.permutations(conds))


@settings(max_examples=400, deadline=None)
@given(rule_lists(), rule_lists() | st.lists(OTHERS, max_size=5), contexts(),
       st.sampled_from(VALUES + ["acct_b!", "x"]), st.integers(-2, 1000))
def test_rules_looked_up_in_a_table_match_as_when_tried_one_by_one(
        denies: list[A.Expr | None], allows: list[A.Expr | None], ctx: Ctx, to: str, amount: int) -> None:
    """From INDEX_AT rules of `args.P == C` or `args.P startswith C` on one parameter,
    compile_rules looks them up; the indices, their order and the deny-first rule stay
    the reference's."""
    ctx = Ctx({"amount": amount, "to": to}, ctx.agent, ctx.time, ctx.tool, ctx.read_state, CONSTS)

    def matching(conditions: list[A.Expr | None]) -> list[int]:
        return [i for i, cond in enumerate(conditions) if cond is None or eval_expr(cond, ctx) is True]

    denied = matching(denies)
    assert compile_rules(denies, allows, CONSTS)(ctx) == (denied, [] if denied else matching(allows))


def _value(source: str, **args: Any) -> Any:
    parsed = parse_source(f"policy p\nconst c = {source}\n")
    assert parsed.policy is not None, parsed.diagnostics
    decl = parsed.policy.decls[0]
    assert isinstance(decl, A.ConstDecl)
    return eval_expr(decl.value, Ctx({}, {}, 0, "", lambda n: None, {}))


@pytest.mark.parametrize("source,value", [
    ("-7 / 2", -4), ("-7 % 2", 1), ("7 % 3", 1), ("-9 % 4", 3), ("7 / -(-2)", 3),
    ("min(3, -4)", -4), ("max(3, -4)", 3), ("abs(-5)", 5), ("len(\"\u00e9\U0001F600\")", 2),
    ("hour(3_599)", 0), ("hour(3_600)", 1), ("hour(86_399)", 23), ("weekday(0)", 3), ("weekday(4 * 86_400)", 0),
    ("if 1 < 2 then 10 else 20", 10), ("\"b\" > \"a\"", True), ("\"\u00e9\" > \"z\"", True),
    ("3 in 1..3", True), ("0 in 1..3", False), ("-2 in -3..-1", True), ("\"ab\" contains \"\"", True),
    ("\"abc\" startswith \"ab\" and \"abc\" endswith \"bc\"", True), ("not 2 not in {1, 2}", True),
])
def test_exact_meaning(source: str, value: Any) -> None:
    assert _value(source) == value


@given(st.integers(-(2**60), 2**60))
def test_hour_and_weekday_ranges(t: int) -> None:
    assert 0 <= hour(t) < 24 and 0 <= weekday(t) < 7


@pytest.mark.parametrize("pattern,yes,no", [
    ("\\d+", ["0", "123"], ["", "\u0661", "12a"]),
    ("\\w*", ["", "a_Z9"], ["\u00e9", "-"]),
    (".", ["\n", "\U0001F600"], ["", "ab"]),
    ("[a-c\\-]{2,3}", ["ab", "a-c"], ["a", "abcd", "ad"]),
    ("[^\\?#]+", ["abc"], ["a?b", ""]),
    ("(ab|c)*x?", ["", "abcx", "cc"], ["abx x", "b"]),
    ("a|", ["a", ""], ["b"]),
    ("\\.md", [".md"], ["amd"]),
    ("[\\d-z]", ["5", "-", "z"], ["a"]),
])
def test_regex_dialect_matches(pattern: str, yes: list[str], no: list[str]) -> None:
    regex = compile_regex(pattern)
    assert all(regex.fullmatch(s) for s in yes)
    assert not any(regex.fullmatch(s) for s in no)


@pytest.mark.parametrize("pattern", ["^a", "a$", "\\s", "\\1", "a*?", "a**", "(?:a)", "a{101}", "a{3,2}", "[", "(",
                                     "[]", "[z-a]", "\\", "a{", "?", "\\D"])
def test_regex_dialect_rejects(pattern: str) -> None:
    with pytest.raises(RegexError):
        parse_regex(pattern)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab.|()*+?[]^-\\dw{},0123", max_size=10), st.text(alphabet="ab\n-_0\u00e9", max_size=6))
def test_dialect_translation_agrees_with_python_re_on_ascii_classes(pattern: str, subject: str) -> None:
    try:
        parse_regex(pattern)
    except RegexError:
        return
    ours = compile_regex(pattern).fullmatch(subject) is not None
    # the same pattern in Python re with ASCII classes and DOTALL: the dialect is a subset
    try:
        theirs = re.fullmatch(pattern, subject, re.ASCII | re.DOTALL) is not None
    except re.error:
        return  # e.g. `[\\d-z]`: a literal `-` after a class escape, which Python re refuses

    assert ours == theirs
