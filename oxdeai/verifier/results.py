"""What `verify` reports, without the solver: each property's `Result`, and the budget
defaults. Kept free of z3 so a cached verification (verifier/cache.py) prints without
loading the solver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from oxdeai.dsl import ast as A

# The deterministic limit per query, in Z3's resource units (`rlimit`): the same query
# gets the same answer on any machine under any load. Calibrated on the bundled
# examples and acceptance cases, whose costliest query uses about 7 million (about
# 3.5 s on the 2-core CI machine): a margin of seven. docs/verify.md, "Budget".
DEFAULT_BUDGET = 50_000_000
DEFAULT_TIMEOUT = 300.0  # seconds per query: a wall-clock backstop only, far above the budget's cost
# In the reason of every `unknown` that the wall clock, not the budget, decided (such an
# answer depends on the machine; verifier/cache.py never keeps it).
WALL_CLOCK = "the query hit the wall-clock backstop"


@dataclass
class Result:
    """One reported property: what `verify` prints, and its JSON line."""

    property: str
    kind: str  # invariant | assertion | check
    status: str  # proved | violated | unknown
    span: A.Span
    counterexample: dict[str, Any] | None = None
    reason: str | None = None
    time_ms: int = 0
    detail: str | None = None  # e.g. the conflicting pair, the uncovered tool

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"property": self.property, "kind": self.kind, "status": self.status,
                               "counterexample": self.counterexample, "reason": self.reason,
                               "time_ms": self.time_ms, "line": self.span.line, "column": self.span.column}
        if self.detail:
            out["detail"] = self.detail
        return out


def eval_command(path: str, cx: dict[str, Any]) -> str:
    """The exact `oxdeai eval` command that reproduces a counterexample."""
    def arg(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return "'" + text.replace("'", "'\\''") + "'"

    command = f"oxdeai eval {path} --request {arg(cx['request'])}"
    if cx.get("state"):
        command += f" --state {arg(cx['state'])}"
    return command
