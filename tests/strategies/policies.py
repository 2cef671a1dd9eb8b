"""Hypothesis strategies for whole policies (as ASTs, printed with the formatter and
loaded through the checker), and for schema-valid requests and states of a policy,
biased towards boundaries.

`examples(n)` is a property's example count: n, or OXDEAI_DIFF_EXAMPLES when set.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from oxdeai.dsl import ast as A
from oxdeai.dsl.formatter import format_policy
from oxdeai.dsl.policy import CheckedPolicy, compile_source
from tests.strategies.exprs import INTS, SMALL_INTS, TEXTS, Scope, bool_expr, int_expr

EXAMPLES = int(os.environ.get("OXDEAI_DIFF_EXAMPLES", "0"))


def examples(default: int) -> int:
    """The number of examples for a property: the default, or OXDEAI_DIFF_EXAMPLES."""
    return EXAMPLES or default


DURATIONS = [A.Duration(1, "m"), A.Duration(1, "h"), A.Duration(1, "d"), A.Duration(7, "d"), A.Duration(90, "s")]


def field_types() -> st.SearchStrategy[A.Type]:
    return st.one_of(
        st.just(A.IntType()),
        st.builds(lambda a, b: A.IntType(min(a, b), max(a, b)), INTS, INTS),
        st.just(A.BoolType()), st.just(A.StringType()),
        st.lists(TEXTS, min_size=1, max_size=3, unique=True).map(lambda v: A.EnumType(tuple(v))),
    )


def default_for(draw: st.DrawFn, t: A.Type) -> A.IntLit | A.StrLit | A.BoolLit | None:
    if not draw(st.booleans()):
        return None
    match t:
        case A.IntType(lo, hi):  # now and then at the edge of the request domain
            low = lo if lo is not None else -(2**53 - 1)
            high = hi if hi is not None else 2**53 - 1
            return A.IntLit(draw(st.one_of(st.integers(max(low, -100), min(high, 100)) if max(low, -100) <= min(
                high, 100) else st.just(low), st.sampled_from([low, high]))))
        case A.BoolType():
            return A.BoolLit(draw(st.booleans()))
        case A.StringType():
            return A.StrLit(draw(TEXTS))
        case A.EnumType(values):
            return A.StrLit(draw(st.sampled_from(values)))
    return None


def refs_for(scope: Scope, ref: A.Expr, t: A.Type) -> None:
    match t:
        case A.IntType():
            scope.ints.append(ref)
        case A.BoolType():
            scope.bools.append(ref)
        case A.StringType():
            scope.strs.append(ref)
        case A.EnumType(values):
            scope.strs.append(ref)
            scope.enums.append((ref, values))


@st.composite
def policy_asts(draw: st.DrawFn) -> A.Policy:
    decls: list[A.Decl] = []
    agent_fields = [A.Field("id", A.StringType())]
    for name in draw(st.lists(st.sampled_from(["role", "depth", "vip"]), unique=True, max_size=2)):
        agent_fields.append(A.Field(name, draw(field_types())))
    decls.append(A.AgentDecl(tuple(agent_fields)))
    tools: list[A.ToolDecl] = []
    for index in range(draw(st.integers(1, 3))):
        params = []
        for name in draw(st.lists(st.sampled_from(["amount", "to", "flag", "kind", "count"]), unique=True,
                                  max_size=4)):
            t = draw(field_types())
            params.append(A.Field(name, t, default_for(draw, t)))
        tools.append(A.ToolDecl(f"t{index}.call", tuple(params)))
    decls.extend(tools)
    decls.append(A.ConstDecl("names", A.SetLit(tuple(A.StrLit(t) for t in draw(st.lists(TEXTS, min_size=1,
                                                                                          max_size=3))))))
    decls.append(A.ConstDecl("cap", A.IntLit(draw(INTS))))
    base = Scope(ints=[A.Name("time"), A.Name("cap")], strs=[A.ToolRef(), A.AgentField("id")], sets=[A.Name("names")])
    for f in agent_fields[1:]:
        refs_for(base, A.AgentField(f.name), f.type)
    # state: one unkeyed bool (a kill switch) and keyed int counters
    states: list[A.StateDecl] = [A.StateDecl("halted", A.BoolType(), A.BoolLit(False))]
    for name in draw(st.lists(st.sampled_from(["spent", "hits"]), unique=True, max_size=2)):
        key = draw(st.sampled_from([(), (A.AgentField("id"),), (A.AgentField("id"), A.ToolRef())]))
        window = draw(st.none() | st.sampled_from(DURATIONS))
        states.append(A.StateDecl(name, A.IntType(), A.IntLit(draw(SMALL_INTS)), key, window))
    decls.extend(states)
    base.bools.append(A.Name("halted"))
    base.ints.extend(A.Name(s.name) for s in states[1:])
    limit_names: list[str] = []
    for index in range(draw(st.integers(0, 2))):
        tool = draw(st.sampled_from(tools))
        scope = _tool_scope(base, tool)
        kind = draw(st.sampled_from(list(A.LimitKind)))
        key = draw(st.sampled_from([(), (A.AgentField("id"),)]))
        name = f"lim{index}"
        limit_names.append(name)
        decls.append(A.LimitDecl(
            name, (A.Pattern(tool.name),), kind, draw(int_expr(scope, 1)) if kind is A.LimitKind.SUM else None,
            key, None if kind is A.LimitKind.CONCURRENT else draw(st.none() | st.sampled_from(DURATIONS)),
            A.IntLit(draw(st.integers(0, 50))),
            draw(st.none() | st.sampled_from(DURATIONS)) if kind is A.LimitKind.CONCURRENT else None))
    for _ in range(draw(st.integers(0, 2))):
        tool = draw(st.sampled_from(tools))
        on_complete = draw(st.booleans())
        scope = _tool_scope(base, tool)
        when_scope = scope
        if on_complete:
            when_scope = Scope(scope.ints, scope.strs + [A.Name("outcome")], scope.bools,
                               scope.enums + [(A.Name("outcome"), ("ok", "failed", "expired"))], scope.sets)
        target = draw(st.sampled_from(states))
        if isinstance(target.type, A.BoolType):
            assign = A.Assign(target.name, A.AssignOp.SET, draw(bool_expr(scope, 1)))
        else:
            assign = A.Assign(target.name, draw(st.sampled_from([A.AssignOp.ADD, A.AssignOp.SUB])),
                              draw(int_expr(scope, 1)))
        decls.append(A.EffectDecl(on_complete, (A.Pattern(tool.name),), draw(st.none() | bool_expr(when_scope, 1)),
                                  (assign,)))
    for index in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(list(A.RuleKind)))
        if draw(st.integers(0, 4)) == 0:
            patterns, scope = (A.Pattern("*"),), base
        else:
            tool = draw(st.sampled_from(tools))
            patterns, scope = (A.Pattern(tool.name),), _tool_scope(base, tool)
        decls.append(A.RuleDecl(kind, f"r{index}", patterns, draw(st.none() | bool_expr(scope, 2)),
                                draw(st.none() | TEXTS)))
    for s in states[1:]:
        if draw(st.booleans()):
            decls.append(A.InvariantDecl(f"inv_{s.name}", A.Binary(draw(st.sampled_from([A.BinOp.LE, A.BinOp.GE])),
                                                                   A.Name(s.name), A.IntLit(draw(SMALL_INTS)))))
    same_key = [s for s in states[1:] if s.key == states[1].key] if len(states) > 2 else []
    if len(same_key) == 2 and draw(st.booleans()):  # one invariant over two states, whose windows may differ
        total = A.Binary(A.BinOp.ADD, A.Name(same_key[0].name), A.Name(same_key[1].name))
        decls.append(A.InvariantDecl("inv_pair", A.Binary(draw(st.sampled_from([A.BinOp.LE, A.BinOp.GE])), total,
                                                          A.IntLit(draw(SMALL_INTS)))))
    for index in range(draw(st.integers(0, 2))):
        tool = draw(st.sampled_from(tools))
        mode = draw(st.sampled_from(list(A.AssertMode)))
        when = draw(bool_expr(_tool_scope(base, tool), 1))
        decls.append(A.AssertDecl(f"a{index}", mode, (A.Pattern(tool.name),), when))
    return A.Policy(A.Header("generated", "1"), tuple(decls))


def _tool_scope(base: Scope, tool: A.ToolDecl) -> Scope:
    scope = Scope(list(base.ints), list(base.strs), list(base.bools), list(base.enums), list(base.sets))
    for p in tool.params:
        refs_for(scope, A.Arg(p.name), p.type)
    return scope


@st.composite
def policies(draw: st.DrawFn) -> tuple[str, CheckedPolicy]:
    """A random policy that passes `oxdeai check`, with its text."""
    ast = draw(policy_asts())
    text = format_policy(ast, (), "")
    policy, _ = compile_source(text, "generated.oxp")
    assume(policy is not None)
    assert policy is not None
    return text, policy


def value_of(draw: st.DrawFn, t: A.Type) -> Any:
    match t:
        case A.IntType(lo, hi):
            low = lo if lo is not None else -(2**53 - 1)
            high = hi if hi is not None else 2**53 - 1
            return draw(st.one_of(st.sampled_from([low, high, min(low + 1, high), max(high - 1, low)]),
                                  st.integers(max(low, -(10**6)), min(high, 10**6)) if max(low, -(10**6)) <= min(
                                      high, 10**6) else st.just(low),
                                  st.integers(low, high)))
        case A.BoolType():
            return draw(st.booleans())
        case A.StringType():
            return draw(TEXTS)
        case A.EnumType(values):
            return draw(st.sampled_from(values))
    raise AssertionError(t)


TIMES = st.one_of(st.sampled_from([0, 86399, 86400, 1_764_000_000, 1_763_942_400, 1_763_942_399]),
                  st.integers(0, 2**40))


@st.composite
def requests(draw: st.DrawFn, policy: CheckedPolicy) -> dict[str, Any]:
    """A schema-valid request, with a fresh nonce and idempotency key."""
    tool = policy.tools[draw(st.sampled_from(sorted(policy.tools)))]
    # a defaulted parameter is sometimes left out: the engine decides with its default
    args = {p.name: value_of(draw, p.type) for p in tool.params if p.default is None or draw(st.booleans())}
    agent = {f.name: value_of(draw, f.type) for f in policy.agent}
    return {"tool": tool.name, "args": args, "agent": agent, "time": draw(TIMES),
            "nonce": "n", "idempotency_key": "k"}


@st.composite
def states_for(draw: st.DrawFn, policy: CheckedPolicy, request: dict[str, Any]) -> dict[str, Any]:
    """Entries at the request's keys, each written now or in an earlier window (or by the
    clock's start), so roll-over is exercised."""
    from oxdeai.runtime.engine import Engine

    engine = Engine(policy, clock=lambda: request["time"])
    state: dict[str, Any] = {}
    for name, decl in policy.states.items():
        if any(isinstance(k, A.Arg) and k.name not in request["args"] for k in decl.key):
            continue
        value = draw(st.booleans()) if isinstance(decl.type, A.BoolType) else draw(INTS)
        written = draw(st.sampled_from([request["time"], max(request["time"] - 1, 0), 0,
                                        max(request["time"] - 86_400, 0)]))
        entry = {"value": value, "written": written}
        if decl.key:
            state.setdefault(name, {})[engine.state_key(name, request)] = entry
        else:
            state[name] = entry
    return state
