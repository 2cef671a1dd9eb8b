"""What a guarded call answers when the tool does not run: a denial, or "already done".

Contract: both are plain values with a stable short `text` (what a model reads as
the tool's result) and a JSON form (`to_dict()`), built only from the decision:
reason codes, rule or limit names and `because` texts, in the engine's order.
`Denied` is the exception form of a `Denial`, for hosts that prefer to raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oxdeai.runtime.models import Decision


@dataclass(frozen=True)
class Denial:
    """The engine said DENY: the tool did not run."""

    tool: str
    decision: Decision = field(repr=False)

    @staticmethod
    def of(tool: str, decision: Decision) -> Denial:
        return Denial(tool, decision)

    @property
    def reasons(self) -> tuple[tuple[str, str | None, str], ...]:
        """(code, name, message) per reason, in the engine's order."""
        return tuple(self.decision.reasons)

    @property
    def decision_id(self) -> str:
        """Computed on first use (a digest over the decision): a denial the host never logs costs none."""
        return self.decision.decision_id

    @property
    def codes(self) -> list[str]:
        return [code for code, _, _ in self.reasons]

    @property
    def text(self) -> str:
        """One line per reason, e.g. `DENIED payments.transfer: limit_exceeded daily_spend: ...`."""
        parts = [f"{code}{' ' + name if name else ''}: {message}" for code, name, message in self.reasons]
        return f"DENIED {self.tool} by policy (oxdeai): " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "DENY", "tool": self.tool, "decision_id": self.decision_id,
                "reasons": [{"code": c, "name": n, "message": m} for c, n, m in self.reasons]}

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class AlreadyDone:
    """An idempotent repeat whose original result this guard does not hold (it ran in
    another process, or is still running): the tool is not run again."""

    tool: str
    decision_id: str  # the original call's
    running: bool  # the original call has not finished yet (in this process)

    @property
    def text(self) -> str:
        state = "is still running" if self.running else "already ran"
        return (f"ALREADY DONE {self.tool}: this call repeats an idempotent call that {state} "
                f"(decision {self.decision_id}); it was not run again")

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "ALLOW", "repeat": True, "tool": self.tool, "decision_id": self.decision_id,
                "status": "running" if self.running else "already_done"}

    def __str__(self) -> str:
        return self.text


class Denied(Exception):
    """Raised instead of returning a `Denial` when the guard is built with `on_deny="raise"`."""

    def __init__(self, denial: Denial) -> None:
        super().__init__(denial.text)
        self.denial = denial
