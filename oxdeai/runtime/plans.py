"""A tool's plan: its rules, gates, effects and guarded invariants, compiled once.

Contract: `build_plan(policy, tool, ...)` resolves at load time everything the engine
does for a call to `tool` (rules indexed by tool and compiled to one function, gates,
effects with the windows they touch, the invariants its writes can break); the engine
builds it before a tool's first store step, so no step waits on a compile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.runtime.interpreter import Compiled, Ctx, compile_expr, compile_rules


@dataclass(frozen=True, slots=True)
class RulePlan:
    name: str
    when: Compiled | None
    because: str | None

    def deny_reason(self) -> tuple[str, str | None, str]:
        """The reason a matching deny rule gives (stage 5)."""
        return ("denied_by_rule", self.name, self.because or f"denied by rule `{self.name}`")


@dataclass(frozen=True, slots=True)
class GatePlan:
    name: str
    amount: Compiled
    bound: int
    lease: int | None


@dataclass(frozen=True, slots=True)
class AssignPlan:
    target: str
    op: A.AssignOp
    value: Compiled


@dataclass(frozen=True, slots=True)
class EffectPlan:
    when: Compiled | None
    assigns: tuple[AssignPlan, ...]
    windows: tuple[int, ...] = ()  # windows of the states it reads or writes (on complete: all must be current)


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """Everything the engine does for one tool, resolved at load time."""

    denies: tuple[RulePlan, ...]
    allows: tuple[RulePlan, ...]
    rules: Callable[[Ctx], tuple[list[int], list[int]]]
    gates: tuple[GatePlan, ...]
    effects: tuple[EffectPlan, ...]
    on_complete: tuple[EffectPlan, ...]
    idempotent_window: int | None
    lease: int | None
    invariants: tuple[InvariantPlan, ...]  # those reading a state this tool's effects may write


@dataclass(frozen=True, slots=True)
class StatePlan:
    name: str
    init: Any
    key: tuple[Compiled, ...]
    window: int | None


@dataclass(frozen=True, slots=True)
class InvariantPlan:
    name: str
    expr: Compiled
    reads: frozenset[str]


def build_plan(policy: CheckedPolicy, tool: str, consts: dict[str, Any], states: dict[str, StatePlan],
               all_invariants: tuple[InvariantPlan, ...]) -> ToolPlan:
    """Everything the engine does for one `tool`, compiled once (outside any store step)
    from the tool's slice of the policy, the one the verifier's World reads too."""
    part = policy.for_tool(tool)

    def compiled(e: A.Expr | None) -> Compiled | None:
        return None if e is None else compile_expr(e, consts)

    def rules(decls: tuple[A.RuleDecl, ...]) -> tuple[RulePlan, ...]:
        return tuple(RulePlan(r.name, compiled(r.when), r.because) for r in decls)

    def effects(decls: tuple[A.EffectDecl, ...]) -> tuple[EffectPlan, ...]:
        return tuple(EffectPlan(compiled(e.when), tuple(AssignPlan(a.target, a.op, compile_expr(a.value, consts))
                                                        for a in e.assigns), effect_windows(e))
                     for e in decls)

    def effect_windows(e: A.EffectDecl) -> tuple[int, ...]:
        names = A.effect_names(e) & policy.states.keys()
        return tuple(sorted({w for n in names if (w := states[n].window) is not None}))

    gates = tuple(GatePlan(g.name, compile_expr(g.amount, consts), g.bound,
                           g.lease.seconds if g.lease else None) for g in part.gates)
    # a limit's generated invariant needs no guard where only the limit's own effect writes
    # its state for this tool: the gate already checked `L + amount <= bound` with amount >= 0
    writers: dict[str, int] = {}
    for e in part.effects:
        for a in e.assigns:
            writers[a.target] = writers.get(a.target, 0) + 1
    gated = {g.name for g in part.gates if writers.get(g.name) == 1}
    generated = {i.name for i in policy.invariants if i.limit is not None}
    invariants = tuple(i for i in all_invariants if i.reads & part.writes
                       and not (i.name in generated and i.name in gated))
    return ToolPlan(rules(part.denies), rules(part.allows),
                    compile_rules([r.when for r in part.denies], [r.when for r in part.allows], consts),
                    gates, effects(part.effects), effects(part.on_complete),
                    part.idempotent_window, part.lease, invariants)


def state_reads(expr: A.Expr, states: dict[str, A.StateDecl]) -> set[str]:
    return A.bare_names(expr) & states.keys()
