"""Hypothesis strategies for well-typed .oxp ASTs over a fixed schema.

The schema (HEADER) declares tools, agent fields, states and consts; the
strategies build typed expressions over it, so every generated policy passes
`oxdeai check`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from oxdeai.dsl import ast as A

HEADER = """policy generated version "1"
agent { id: string, role: "a" | "b", depth: int[0..8] }
tool pay.send(amount: int[-100..100_000], to: string, kind: "x" | "y" = "x", urgent: bool = false)
tool pay.refund(amount: int[1..500], to: string)
state spent: int = 0 per agent.id every 1d
state halted: bool = false
const trusted = {"acct_a", "acct_b"}
const cap = 1_000
"""

INT_REFS = [A.Arg("amount"), A.Name("spent"), A.AgentField("depth"), A.Name("time"), A.Name("cap")]
STR_REFS = [A.Arg("to"), A.AgentField("id"), A.ToolRef()]
ENUM_REFS = [(A.AgentField("role"), ("a", "b"))]
PATTERNS = ["pay.send", "pay.refund", "pay.*", "\\d+", "[a-z_\\-]+\\.md", "(ab|c)*x?", ".{0,3}", "[^\\?#]+",
            "a{2,5}", "\u00e9+|z"]

ints = st.integers(min_value=-(10**12), max_value=10**12)
texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)


def int_expr(depth: int = 3) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(ints.map(A.IntLit), st.sampled_from(INT_REFS))
    if depth <= 0:
        return leaf
    sub = int_expr(depth - 1)
    positive = st.integers(min_value=1, max_value=1000).map(A.IntLit)
    return st.one_of(
        leaf,
        sub.filter(lambda e: not isinstance(e, A.IntLit)).map(A.Neg),
        st.builds(A.Binary, st.sampled_from([A.BinOp.ADD, A.BinOp.SUB]), sub, sub),
        st.builds(A.Binary, st.just(A.BinOp.MUL), ints.map(A.IntLit), sub),
        st.builds(A.Binary, st.just(A.BinOp.MUL), sub, ints.map(A.IntLit)),
        st.builds(A.Binary, st.sampled_from([A.BinOp.DIV, A.BinOp.MOD]), sub, positive),
        st.builds(A.If, bool_expr(depth - 1), sub, sub),
        st.builds(A.Call, st.just("len"), st.tuples(str_expr(depth - 1))),
        st.builds(A.Call, st.sampled_from(["min", "max"]), st.tuples(sub, sub)),
        st.builds(A.Call, st.sampled_from(["abs", "hour", "weekday"]), st.tuples(sub)),
    )


def str_expr(depth: int = 2) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(texts.map(A.StrLit), st.sampled_from(STR_REFS))
    if depth <= 0:
        return leaf
    return st.one_of(leaf, st.builds(A.If, bool_expr(depth - 1), str_expr(depth - 1), str_expr(depth - 1)))


def bool_expr(depth: int = 3) -> st.SearchStrategy[A.Expr]:
    leaf = st.one_of(st.booleans().map(A.BoolLit), st.just(A.Name("halted")))
    if depth <= 0:
        return leaf
    sub = bool_expr(depth - 1)
    i, s = int_expr(depth - 1), str_expr(depth - 1)
    compare = st.sampled_from(sorted(A.COMPARE_OPS, key=lambda o: o.value))
    enum_cmp = st.builds(
        lambda ref_values, eq, pick: A.Binary(A.BinOp.EQ if eq else A.BinOp.NE, ref_values[0],
                                              A.StrLit(ref_values[1][pick % len(ref_values[1])])),
        st.sampled_from(ENUM_REFS), st.booleans(), st.integers(0, 5))
    return st.one_of(
        leaf,
        sub.map(A.Not),
        st.builds(A.Binary, st.sampled_from([A.BinOp.AND, A.BinOp.OR]), sub, sub),
        st.builds(A.Binary, compare, i, i),
        st.builds(A.Binary, compare, s, s),
        st.builds(A.Binary, st.sampled_from([A.BinOp.EQ, A.BinOp.NE]), sub, sub),
        st.builds(A.Binary, st.sampled_from([A.BinOp.STARTSWITH, A.BinOp.ENDSWITH, A.BinOp.CONTAINS]), s, s),
        st.builds(lambda x, lo, hi, neg: A.In(x, A.RangeSet(A.IntLit(lo), A.IntLit(hi)), neg), i, ints, ints,
                  st.booleans()),
        st.builds(lambda x, items, neg: A.In(x, A.SetLit(tuple(A.StrLit(t) for t in items)), neg), s,
                  st.lists(texts, min_size=1, max_size=3), st.booleans()),
        st.builds(lambda x, neg: A.In(x, A.Name("trusted"), neg), s, st.booleans()),
        st.builds(A.Matches, s, st.sampled_from(PATTERNS)),
        st.builds(A.If, sub, sub, sub),
        enum_cmp,
    )


names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"time", "outcome", "args", "agent", "tool", "true", "false", "spent", "halted",
                        "trusted", "cap", "if", "then", "else", "and", "or", "not", "in"})


@st.composite
def rules(draw: st.DrawFn) -> list[A.Decl]:
    count = draw(st.integers(min_value=1, max_value=6))
    chosen = draw(st.lists(names, min_size=count, max_size=count, unique=True))
    decls: list[A.Decl] = []
    for name in chosen:
        kind = draw(st.sampled_from([A.RuleKind.ALLOW, A.RuleKind.DENY]))
        pattern = draw(st.sampled_from(["pay.send", "pay.*", "pay.send, pay.refund"]))
        when = draw(st.none() | bool_expr())
        because = draw(st.none() | texts)
        patterns = tuple(A.Pattern(p.strip()) for p in pattern.split(","))
        decls.append(A.RuleDecl(kind, name, patterns, when, because))
    return decls


@st.composite
def policies(draw: st.DrawFn) -> A.Policy:
    """A policy: HEADER's declarations plus random rules, an effect, an invariant and a limit."""
    from oxdeai.dsl.parser import parse_source

    base = parse_source(HEADER).policy
    assert base is not None
    decls = list(base.decls) + draw(rules())
    decls.append(A.EffectDecl(draw(st.booleans()), (A.Pattern("pay.send"),), draw(st.none() | bool_expr(2)),
                              (A.Assign("spent", draw(st.sampled_from([A.AssignOp.ADD, A.AssignOp.SUB])),
                                        draw(int_expr(2))),)))
    decls.append(A.InvariantDecl("inv", A.Binary(A.BinOp.LE, A.Name("spent"), A.IntLit(draw(ints)))))
    decls.append(A.LimitDecl("lim", (A.Pattern("pay.*"),), A.LimitKind.COUNT, None, (A.AgentField("id"),),
                             A.Duration(draw(st.integers(1, 90)), draw(st.sampled_from("smhd"))),
                             A.IntLit(draw(st.integers(0, 10**6)))))
    return A.Policy(base.header, tuple(decls))
