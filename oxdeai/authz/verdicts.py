"""What the executor's check answers (`oxdeai.pep.verify`): `Authorized` or `Refused`.
Kept apart from the check itself so a guard can name them without the authz extra."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Reason = Literal["malformed", "unknown_key", "bad_signature", "wrong_audience", "expired", "wrong_call", "replayed"]


@dataclass(frozen=True)
class Authorized:
    decision_id: str
    tool: str | None
    policy: dict[str, Any]
    jti: str
    expires: int
    issuer: str

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class Refused:
    reason: Reason
    detail: str

    def __bool__(self) -> bool:
        return False
