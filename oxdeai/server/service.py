"""One decision or completion end to end: credential, body, engine, metrics, log.

Contract: `Service.decide(caller, body)` and `complete(caller, body)` answer
`(status, JSON bytes)` and never raise. The body is validated against its model
(models.py): not JSON, or not that shape, is 400 with the reason. A decision is made
with the caller's agent record and the service's clock, never anything from the body;
its answer is the engine's decision JSON (a store that is down is a DENY
`store_unavailable`, 200). A completion must name a call decided for the same agent
record (409 otherwise; 503 when the store failed and nothing was applied). Each
decision and completion is one line of the decision log and is counted in the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as timer
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from oxdeai.audit.log import DecisionLog, completion_json
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.guard.tool_schema import json_schema
from oxdeai.runtime.completions import CompletionError, CompletionStoreError
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.models import canonical_json
from oxdeai.runtime.strict_json import loads_strict
from oxdeai.server.keys import Caller, Keys
from oxdeai.server.metrics import Metrics
from oxdeai.server.models import CompleteBody, DecideBody, PolicyInfo

Answer = tuple[int, bytes]


def error(status: int, message: str) -> Answer:
    return status, canonical_json({"error": message})


@dataclass(frozen=True)
class Serving:
    """One policy version and the engine deciding by it; swapped whole on a reload."""

    policy: CheckedPolicy
    engine: Engine

    def info(self) -> bytes:
        p = self.policy
        return PolicyInfo(name=p.name, version=p.version, sha256=p.sha256,
                          tools={name: json_schema(tool) for name, tool in p.tools.items()}).model_dump_json().encode()


class Service:
    def __init__(self, engine: Engine, keys: Keys, log: DecisionLog | None = None,
                 issuer: Any = None) -> None:
        """`issuer`: an oxdeai.authz.tokens.Issuer when ALLOWs carry signed authorizations
        (the authz extra is imported only then)."""
        self.issuer = issuer
        self.current = Serving(engine.policy, engine)
        self.keys = keys
        self.log = log or DecisionLog(None)
        self.metrics = Metrics()
        self.metrics.serving(engine.policy.name, engine.policy.version, engine.policy.sha256)
        self._in_flight = 0
        self._resume: asyncio.Event | None = None  # set while a rollout holds new calls back
        self._drained: asyncio.Event | None = None
        self._inline = True  # False while the store fails: steps then wait in a thread, not on the loop

    def serve(self, serving: Serving) -> None:
        """Another version takes over (server/reload.py)."""
        self.current = serving
        self.metrics.serving(serving.policy.name, serving.policy.version, serving.policy.sha256)

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """New decisions and completions wait; the ones in flight finish first."""
        self._resume, self._drained = asyncio.Event(), asyncio.Event()
        try:
            if self._in_flight:
                await self._drained.wait()
            yield
        finally:
            resume, self._resume, self._drained = self._resume, None, None
            resume.set()

    @contextlib.asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        while self._resume is not None:
            await self._resume.wait()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self._drained is not None:
                self._drained.set()

    def _accept(self, model: type[DecideBody] | type[CompleteBody], caller: Caller, raw: bytes) -> Any:
        """The body, or the answer that refuses it (400 for the body, 403 for a caller with no agent)."""
        body = _parse(model, raw)
        if isinstance(body, tuple):
            self.metrics.rejected.labels("400").inc()
            return body
        if caller.agent is None:
            self.metrics.rejected.labels("403").inc()
            return error(403, f"the credential `{caller.name}` is an admin credential with no agent record")
        return body

    async def decide(self, caller: Caller, raw: bytes) -> Answer | tuple[int, bytes, str]:
        """The decision; with an issuer, an ALLOW (not a repeat) also carries its signed
        authorization (the third element), for the call as sent and the caller's agent."""
        started = timer.perf_counter()
        body = self._accept(DecideBody, caller, raw)
        if isinstance(body, tuple):
            return body
        call: dict[str, Any] = {"tool": body.tool, "args": body.args}
        if body.nonce is not None:
            call["nonce"] = body.nonce
        if body.idempotency_key is not None:
            call["idempotency_key"] = body.idempotency_key
        async with self._admitted():
            serving = self.current  # a call in flight finishes on the version it started on
            decision = await self._decided(serving.engine, call, {"agent": caller.agent})
            answer = decision.to_json()  # its id is known to the store before any rollout runs
        self.metrics.decided(decision, body.tool in serving.policy.tools, timer.perf_counter() - started)
        self.log.decision(caller.name, answer)
        if self.issuer is not None and decision.allowed and not decision.repeat:
            return 200, answer, self.issuer.token(decision, call, {"agent": caller.agent})
        return 200, answer

    async def complete(self, caller: Caller, raw: bytes) -> Answer:
        body = self._accept(CompleteBody, caller, raw)
        if isinstance(body, tuple):
            return body
        try:
            async with self._admitted():
                effects = await self._completed(self.current.engine, body, caller.agent)
        except CompletionStoreError:
            self.metrics.store_errors.labels("complete").inc()
            self.metrics.completions.labels(body.outcome, "store_unavailable").inc()
            return error(503, "the state store is unavailable: nothing was applied; retry the completion")
        except CompletionError as exc:
            self.metrics.completions.labels(body.outcome, "refused").inc()
            return error(409, str(exc))
        self.metrics.completions.labels(body.outcome, "applied").inc()
        answer = completion_json(body.decision_id, body.outcome, effects)
        self.log.completion(caller.name, answer)
        return 200, answer

    # A store step is one round trip (~0.1 ms to a Redis on loopback, less to SQLite): on
    # the event loop's own thread it costs less than the hop to a worker thread and back,
    # and a worker's decisions run one at a time under the GIL either way (measured in
    # bench/serve.py: more decisions/s and a shorter tail at half load). While the store
    # fails, a step may wait for its timeout: steps then run in a thread, so health
    # checks and the other requests are still answered, until one succeeds again
    # (`adecide` and `acomplete` stay on the loop themselves for a store with no round trip).

    async def _decided(self, engine: Engine, call: dict[str, Any], context: dict[str, Any]) -> Any:
        decision = engine.decide(call, context) if self._inline else await engine.adecide(call, context)
        self._inline = not any(r[0] == "store_unavailable" for r in decision.reasons)
        return decision

    async def _completed(self, engine: Engine, body: CompleteBody, agent: Any) -> Any:
        try:
            if self._inline:
                effects = engine.complete(body.decision_id, body.outcome, None, agent)
            else:
                effects = await engine.acomplete(body.decision_id, body.outcome, None, agent)
        except CompletionStoreError:
            self._inline = False
            raise
        self._inline = True
        return effects

    def ready(self) -> dict[str, str]:
        """What keeps the service from being ready (empty when ready)."""
        problems = {}
        try:
            self.current.engine.store_clock()  # one round trip through the store's step
        except Exception as exc:  # any store failure: not ready, and why
            problems["store"] = f"the state store does not answer: {str(exc)[:200]}"
        if not self.log.healthy:
            problems["log"] = self.log.problem or "the decision log cannot be written"
        return problems


def _parse(model: type[DecideBody] | type[CompleteBody], raw: bytes) -> Any:
    """The body as `model`, or the 400 answer that says what is wrong with it. Strict
    JSON: an object naming a key twice is refused (parsers disagree on which one wins,
    so what was decided could differ from what runs), and so are NaN and Infinity."""
    try:
        data = loads_strict(raw)
    except (ValueError, RecursionError) as exc:
        return error(400, f"the body is not valid JSON: {str(exc)[:200]}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "the body"
        if first.get("type") == "extra_forbidden" and where in ("agent", "time", "context"):
            return error(400, f"`{where}` is not taken from the body: the agent is the credential's, the time "
                              "the service's clock")
        return error(400, f"`{where}`: {first.get('msg', 'invalid')}")
