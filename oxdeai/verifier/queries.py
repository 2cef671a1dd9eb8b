"""What every `verify` property is built from: one query over a World, and its verdict.

Contract: `Prover.query(build, tool)` asks Z3 whether the constraints `build(world)`
adds to one schema-valid request to `tool` can all hold, preferring readable models.
`conclude` reads the answer the same way for every property: `unsat` -> None (nothing
to report), `unknown` -> an `unknown` Verdict with the solver's reason, `sat` -> the
verdict `on_model` words from the model (after replaying its counterexample through
the engine). `inductive` is I, the invariants every property but a step assumes; it
is given to a Prover, computed once before any assertion or check (invariants.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.verifier.replay import extract
from oxdeai.verifier.results import DEFAULT_BUDGET, DEFAULT_TIMEOUT
from oxdeai.verifier.solve import Answer, Outcome, solve
from oxdeai.verifier.symbolic import Vars, World


@dataclass
class Verdict:
    """A property's answer before it is reported."""

    status: str  # proved | violated | unknown
    counterexample: dict[str, Any] | None = None
    reason: str | None = None


class Prover:
    def __init__(self, policy: CheckedPolicy, inductive: list[A.InvariantDecl],
                 timeout_s: float = DEFAULT_TIMEOUT, budget: int = DEFAULT_BUDGET) -> None:
        self.policy = policy
        self.inductive = inductive
        self.timeout = timeout_s
        self.budget = budget
        self.tools = list(policy.tools)

    def query(self, build: Callable[[World], list[Any]], tool: str, outcome: str | None = None,
              readable: bool = True) -> tuple[Outcome, World]:
        """`readable=False` when no one will read the model: skips the wishes for small values."""
        world = World(self.policy, tool, Vars(), outcome)
        constraints = [world.schema(), *build(world)]
        return solve(constraints, self.timeout, world.wishes() if readable else None, self.budget), world

    def ask(self, build: Callable[[World], list[Any]], tool: str,
            on_counterexample: Callable[[dict[str, Any]], Verdict]) -> Verdict | None:
        """`query`, then `conclude` with the model read back as a counterexample."""
        result, world = self.query(build, tool)
        return self.conclude(result, lambda model: on_counterexample(extract(world, model)))

    @staticmethod
    def conclude(outcome: Outcome, on_model: Callable[[z3.ModelRef], Verdict]) -> Verdict | None:
        if outcome.answer is Answer.HOLDS:
            return None
        if outcome.answer is Answer.UNKNOWN:
            return Verdict("unknown", reason=outcome.reason)
        assert outcome.model is not None
        return on_model(outcome.model)
