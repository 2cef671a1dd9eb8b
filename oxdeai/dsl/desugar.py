"""Desugaring: `limit` declarations become core state, effects, gates and invariants.

Contract: `limit L on P: sum E per K every W <= B` becomes exactly
`state L: int = 0 per K every W`, `effect on P: L += E`, the generated
`invariant L: L <= B`, and a gate "a call matching P is allowed only if
L + E <= B (and E >= 0)". `count` is `sum 1`; `concurrent` adds
`effect on complete P: L = max(L - 1, 0)` and has no window (a release never takes
the count below zero, so "L >= 0" is a fact the verifier can prove, not only assume). Later stages see only the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from oxdeai.dsl import ast as A


@dataclass(frozen=True, slots=True)
class Gate:
    """A limit gate: a call matching `patterns` needs `state + amount <= bound`."""

    name: str
    patterns: tuple[A.Pattern, ...]
    amount: A.Expr
    bound: int
    concurrent: bool
    lease: A.Duration | None
    span: A.Span


@dataclass(frozen=True, slots=True)
class Core:
    states: tuple[A.StateDecl, ...]
    effects: tuple[A.EffectDecl, ...]
    gates: tuple[Gate, ...]
    invariants: tuple[A.InvariantDecl, ...]


def desugar(policy: A.Policy, bounds: dict[str, int]) -> Core:
    """`bounds` holds each limit's bound, folded by the checker."""
    states: list[A.StateDecl] = []
    effects: list[A.EffectDecl] = []
    gates: list[Gate] = []
    invariants: list[A.InvariantDecl] = []
    for decl in policy.decls:
        match decl:
            case A.StateDecl():
                states.append(decl)
            case A.EffectDecl():
                effects.append(decl)
            case A.InvariantDecl():
                invariants.append(decl)
            case A.LimitDecl():
                amount = decl.amount if decl.amount is not None else A.IntLit(1, decl.span)
                bound = bounds[decl.name]
                states.append(A.StateDecl(decl.name, A.IntType(), A.IntLit(0), decl.key, decl.window,
                                          decl.span, decl.name_span))
                effects.append(A.EffectDecl(False, decl.patterns, None,
                                            (A.Assign(decl.name, A.AssignOp.ADD, amount, decl.span),),
                                            decl.span, limit=decl.name))
                concurrent = decl.kind is A.LimitKind.CONCURRENT
                if concurrent:
                    count = A.Name(decl.name, decl.name_span)
                    released = A.Call("max", (A.Binary(A.BinOp.SUB, count, A.IntLit(1), decl.span), A.IntLit(0)),
                                      decl.span)
                    effects.append(A.EffectDecl(True, decl.patterns, None,
                                                (A.Assign(decl.name, A.AssignOp.SET, released, decl.span),),
                                                decl.span, limit=decl.name))
                invariants.append(A.InvariantDecl(
                    decl.name, A.Binary(A.BinOp.LE, A.Name(decl.name, decl.name_span), A.IntLit(bound), decl.span),
                    decl.span, decl.name_span, limit=decl.name))
                gates.append(Gate(decl.name, decl.patterns, amount, bound, concurrent, decl.lease, decl.span))
            case _:
                pass
    return Core(tuple(states), tuple(effects), tuple(gates), tuple(invariants))
