"""Signed authorizations through the guard, for a decision point and an executor that
are different processes (docs/receipts.md).

Contract, "issue" mode (the decision point): a `Guard` built with an `Issuer` answers
`guard.authorize(tool, args)` with an `Authorization` for an ALLOW — the call as the
executor must run it (arguments with the declared defaults filled in, the nonce and
idempotency key), the trusted context it was decided in, and the signed token binding
the two — or a `Denial` (raised as `Denied` with `on_deny="raise"`) for a DENY, or
`AlreadyDone` for an idempotent repeat (its call was authorized once; a second token
would let it run twice). The tool does not run here; the host sends the authorization
to the executor and reports the outcome with `guard.report(authorization, outcome)`.

"verify" mode (the executor): an `Executor` holds the decision point's public keys, its
own audience name and a replay store; `executor.run(authorization)` runs the tool
registered under the call's name only if `oxdeai.pep.verify` accepts the token for that
exact call and context, once. Otherwise the tool does not run and the answer is the
`Refused` (raised as `Unauthorized` with `on_refuse="raise"`). It needs no policy and
no state store: what it trusts is the signature.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from oxdeai.authz.verdicts import Refused

if TYPE_CHECKING:  # the authz extra is imported only by an Executor, when it is built
    from oxdeai.authz.keys import KeyRing
    from oxdeai.authz.replay import ReplayStore


@dataclass(frozen=True)
class Authorization:
    call: dict[str, Any]  # tool, args (defaults filled in), nonce, idempotency_key
    context: dict[str, Any]  # agent, and time when the host bound one
    token: str
    decision_id: str

    def to_dict(self) -> dict[str, Any]:
        """The envelope sent to the executor (JSON-ready)."""
        return {"call": self.call, "context": self.context, "token": self.token}

    @staticmethod
    def from_dict(envelope: Any) -> Authorization | Refused:
        """An envelope as received; `Refused("malformed")` when it is not one."""
        if not (isinstance(envelope, dict) and isinstance(envelope.get("call"), dict)
                and isinstance(envelope.get("context"), dict) and isinstance(envelope.get("token"), str)
                and isinstance(envelope["call"].get("tool"), str) and isinstance(envelope["call"].get("args"), dict)):
            return Refused("malformed", "an authorization is {call: {tool, args, ...}, context: {...}, token}")
        return Authorization(envelope["call"], envelope["context"], envelope["token"], "")


class Unauthorized(Exception):
    """An executor refused to run a call (`on_refuse="raise"`)."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(f"{refused.reason}: {refused.detail}")
        self.refused = refused


class Executor:
    def __init__(self, *, keys: KeyRing, audience: str, replay: ReplayStore | str | None, leeway: int = 5,
                 on_refuse: Literal["result", "raise"] = "result") -> None:
        """`replay`: the single-use store (memory://, sqlite:///PATH, redis://...) every
        executor process sharing this audience shares; None only where single use is
        enforced elsewhere."""
        from oxdeai.authz.replay import open_replay

        self.keys = keys
        self.audience = audience
        self.replay = open_replay(replay) if isinstance(replay, str) else replay  # opened once, not per call
        self.leeway = leeway
        self.on_refuse = on_refuse
        self.tools: dict[str, Callable[..., Any]] = {}

    def tool(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: the function runs the tool `name` for calls that carry a valid authorization."""
        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.tools[name] = fn
            return fn
        return register

    def check(self, authorization: Authorization | dict[str, Any]) -> tuple[Callable[..., Any], dict[str, Any]] | Refused:
        """The function to run and its arguments, or why the call may not run."""
        found = authorization if isinstance(authorization, Authorization) else Authorization.from_dict(authorization)
        if isinstance(found, Refused):
            return found
        fn = self.tools.get(found.call["tool"])
        if fn is None:
            return Refused("wrong_call", f"this executor runs no tool `{found.call['tool']}`")
        from oxdeai.pep import verify

        verdict = verify(found.token, found.call, found.context, audience=self.audience, keys=self.keys,
                         replay=self.replay, leeway=self.leeway)
        if isinstance(verdict, Refused):
            return verdict
        return fn, found.call["args"]

    def run(self, authorization: Authorization | dict[str, Any]) -> Any:
        checked = self.check(authorization)
        if isinstance(checked, Refused):
            return self._refuse(checked)
        fn, args = checked
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"`{fn.__name__}` is async: use `await executor.arun(...)`")
        return fn(**args)

    async def arun(self, authorization: Authorization | dict[str, Any]) -> Any:
        checked = self.check(authorization)
        if isinstance(checked, Refused):
            return self._refuse(checked)
        fn, args = checked
        value = fn(**args)
        return await value if inspect.isawaitable(value) else value

    def _refuse(self, refused: Refused) -> Refused:
        if self.on_refuse == "raise":
            raise Unauthorized(refused)
        return refused
