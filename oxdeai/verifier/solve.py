"""Running one query, and reading a model back as the brief's request / state shapes.

Contract: every solver answer is mapped explicitly: `unsat` means the property
holds for that query, `sat` gives a model, `unknown` is reported with Z3's reason.
Models are read back exactly (strings code point by code point).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

import z3

from oxdeai.verifier.results import DEFAULT_BUDGET, DEFAULT_TIMEOUT, WALL_CLOCK

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TIMEOUT", "Answer", "Outcome", "model_value", "solve"]

class Answer(enum.Enum):
    HOLDS = "holds"  # unsat: no counterexample
    FAILS = "fails"  # sat: a model is a counterexample
    UNKNOWN = "unknown"


@dataclass
class Outcome:
    answer: Answer
    model: z3.ModelRef | None = None
    reason: str | None = None


def solve(constraints: list[Any], timeout_s: float, prefer: list[list[Any]] | None = None,
          budget: int = DEFAULT_BUDGET) -> Outcome:
    """Is the conjunction satisfiable? `budget` is the deterministic limit (Z3 resource
    units per check), `timeout_s` the wall-clock backstop. `prefer` are tiers of soft
    wishes (small, readable models), strongest first; a tier is dropped if it makes the
    query unsatisfiable. The answer itself never depends on them: it is the first check's,
    without wishes, and its model is returned when no tier holds."""
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout_s * 1000)))
    solver.set("rlimit", budget)
    solver.add(*constraints)
    started = time.monotonic()
    answer = solver.check()
    if answer != z3.sat:
        return _outcome(answer, solver, time.monotonic() - started >= timeout_s)
    first = solver.model()  # kept: a later check (with or without wishes) may run out of budget
    for tier in prefer or []:
        solver.push()
        solver.add(*tier)
        if solver.check() == z3.sat:
            return Outcome(Answer.FAILS, solver.model())
        solver.pop()
    return Outcome(Answer.FAILS, first)


def _outcome(answer: Any, solver: z3.Solver, out_of_time: bool) -> Outcome:
    if answer == z3.unsat:
        return Outcome(Answer.HOLDS)
    if answer == z3.sat:
        return Outcome(Answer.FAILS, solver.model())
    if answer == z3.unknown:
        why = solver.reason_unknown()
        if out_of_time and why in ("timeout", "canceled"):
            return Outcome(Answer.UNKNOWN, reason=f"{WALL_CLOCK} (raise `--timeout`); this answer depends on the "
                                                  "machine's speed and load")
        if "resource" in why or why == "canceled":  # Z3 says `canceled` when the rlimit stops it
            return Outcome(Answer.UNKNOWN, reason="the query used up its solver budget (raise `--budget`)")
        return Outcome(Answer.UNKNOWN, reason=f"the solver gave up: {why}")
    raise AssertionError(f"unreachable solver answer {answer}")


def model_value(model: z3.ModelRef, var: Any) -> Any:
    """The concrete value of a variable (ints, bools, strings by code point)."""
    value = model.eval(var, model_completion=True)
    if z3.is_int_value(value):
        return value.as_long()
    if z3.is_true(value):
        return True
    if z3.is_false(value):
        return False
    if z3.is_string_value(value):
        length = z3.simplify(z3.Length(value)).as_long()
        codes = [z3.simplify(z3.StrToCode(z3.SubString(value, i, 1))).as_long() for i in range(length)]
        return "".join(chr(c) for c in codes)
    raise AssertionError(f"unexpected model value {value}")
