"""`Guard`: the one enforcement point between a model's tool call and the tool.

Contract: a guarded call is decided before the tool runs and completed after it.
DENY: the tool does not run; the call answers a `Denial` (or raises `Denied`). ALLOW:
the tool runs once with the arguments the engine decided on (declared defaults
filled in), and the call is completed `"ok"` when it returns, `"failed"` when it
raises (the exception is raised again). An idempotent repeat never runs the tool:
it answers the original call's result (or raises its exception again) when this
guard holds it, else `AlreadyDone`. The trusted context (agent, time, host facts)
comes from the host — bound when the guard is built or per run with `bind` — never
from the model's arguments; a completion is at the bound time too, when there is one
(else at the engine's clock). Nonces are the framework's call id where the caller
passes one, else a fresh random one; idempotency keys are the host's where it binds
one, else a digest of the tool and its decided arguments. docs/integrations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from oxdeai.audit.log import DecisionLog, completion_json
from oxdeai.dsl.policy import CheckedPolicy, load_policy
from oxdeai.guard.answers import AlreadyDone, Denial, Denied
from oxdeai.guard.authorized import Authorization
from oxdeai.guard.results import Results
from oxdeai.guard.signature import check_signature
from oxdeai.runtime.completions import CompletionError, CompletionStoreError
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.models import Decision, canonical_json
from oxdeai.runtime.store import StateStore
from oxdeai.runtime.store_urls import open_store

if TYPE_CHECKING:
    from oxdeai.authz.tokens import Issuer

# What `bind` sets for the calls of one run (a task or thread sees its own).
_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("oxdeai_guard_context", default=None)


class Guard:
    def __init__(self, policy: CheckedPolicy | str | Path | Engine, *, store: StateStore | str | None = None,
                 agent: dict[str, Any] | None = None, on_deny: Literal["result", "raise"] = "result",
                 max_results: int = 10_000, log: DecisionLog | str | None = None, issuer: Issuer | None = None) -> None:
        """`policy`: a loaded policy, a path, or an `Engine` already built (then `store` is
        not given). `agent`: the trusted agent record for every call, unless `bind` gives
        another. `on_deny`: answer a `Denial` (the model reads it) or raise `Denied`.
        `log`: the decision log (a `DecisionLog`, or a file to append to) every decision
        and completion is written to. `issuer`: "issue" mode, `authorize` signs ALLOWs
        for an executor (guard/authorized.py)."""
        if isinstance(policy, Engine):
            if store is not None:
                raise ValueError("give the store to the Engine, or give the Guard a policy and a store")
            self.engine = policy
        else:
            checked = policy if isinstance(policy, CheckedPolicy) else load_policy(Path(policy))
            self.engine = Engine(checked, open_store(store, checked) if isinstance(store, str) else store)
        self.policy = self.engine.policy
        self.agent = agent
        self.on_deny = on_deny
        self.results = Results(max_results)
        self.log = DecisionLog(log, who="oxdeai guard") if isinstance(log, str) else log
        self.issuer = issuer

    # ---- the trusted context ------------------------------------------------------

    @contextlib.contextmanager
    def bind(self, agent: dict[str, Any] | None = None, time: int | None = None,
             idempotency_key: str | None = None) -> Iterator[None]:
        """The trusted context of the calls made inside the block (this task or thread only)."""
        token = _bound.set({"agent": agent, "time": time, "idempotency_key": idempotency_key})
        try:
            yield
        finally:
            _bound.reset(token)

    def context(self) -> dict[str, Any]:
        bound = _bound.get() or {}
        agent = bound.get("agent") if bound.get("agent") is not None else self.agent
        out: dict[str, Any] = {"agent": agent if agent is not None else {}}
        if bound.get("time") is not None:
            out["time"] = bound["time"]
        return out

    # ---- wrapping a tool ------------------------------------------------------------

    def tool(self, name: str, *, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: the function becomes the guarded tool `name` of the policy. Its
        parameters must match the declaration (checked now: `ToolMismatch`). `skip`:
        leading parameters a framework passes itself, not decided on. Sync and async
        functions alike; the wrapper takes keyword arguments and an optional `call_id`."""
        declared = self.policy.tools.get(name)
        if declared is None:
            raise KeyError(f"the policy `{self.policy.name}` declares no tool `{name}`")

        def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
            check_signature(fn, declared, skip)
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def guarded_async(*framework: Any, call_id: str | None = None, **args: Any) -> Any:
                    return await self.acall(name, args, functools.partial(fn, *framework), call_id=call_id)
                return guarded_async

            @functools.wraps(fn)
            def guarded(*framework: Any, call_id: str | None = None, **args: Any) -> Any:
                return self.call(name, args, functools.partial(fn, *framework), call_id=call_id)
            return guarded

        return wrap

    # ---- one call -------------------------------------------------------------------

    def request(self, tool: str, args: dict[str, Any], call_id: str | None = None,
                decided: dict[str, Any] | None = None) -> dict[str, Any]:
        """The call as the engine receives it: the model's arguments, a nonce, an idempotency
        key (`decided`: the arguments with defaults filled in, when the caller has them)."""
        call: dict[str, Any] = {"tool": tool, "args": args}
        if self.policy.nonce_window is not None:
            call["nonce"] = call_id if call_id is not None else uuid.uuid4().hex
        if tool in self.policy.tools and self.policy.for_tool(tool).idempotent_window is not None:
            bound = (_bound.get() or {}).get("idempotency_key")
            if bound is None:
                digest = canonical_json({"tool": tool, "args": decided if decided is not None else self._decided_args(tool, args)})
                bound = "oxdeai-args-" + hashlib.sha256(digest).hexdigest()[:32]
            call["idempotency_key"] = bound
        return call

    def call(self, tool: str, args: dict[str, Any], run: Callable[..., Any], call_id: str | None = None) -> Any:
        decided = self._decided_args(tool, args)
        decision = self.engine.decide(self.request(tool, args, call_id, decided), self.context())
        self._logged(decision)
        early = self._before(tool, decision)
        if early is not None:
            return early.value()
        window = self._started(tool, decision)
        try:
            value = run(**decided)
        except BaseException as exc:
            self._finish(decision, window, "failed", error=exc)
            raise
        self._finish(decision, window, "ok", value=value)
        return value

    async def acall(self, tool: str, args: dict[str, Any], run: Callable[..., Awaitable[Any]],
                    call_id: str | None = None) -> Any:
        decided = self._decided_args(tool, args)
        decision = await self.engine.adecide(self.request(tool, args, call_id, decided), self.context())
        self._logged(decision)
        early = self._before(tool, decision)
        if early is not None:
            return early.value()
        window = self._started(tool, decision)
        try:
            value = await run(**decided)
        except BaseException as exc:
            await self._afinish(decision, window, "failed", error=exc)
            raise
        await self._afinish(decision, window, "ok", value=value)
        return value

    # ---- "issue" mode: the decision point of a separate executor ------------------------

    def authorize(self, tool: str, args: dict[str, Any], call_id: str | None = None) -> Any:
        """An `Authorization` for the executor, or the `Denial` / `AlreadyDone` the call
        answers instead (the tool does not run here)."""
        if self.issuer is None:
            raise ValueError("`authorize` is the guard's issue mode: build the Guard with an `issuer`")
        decided = self._decided_args(tool, args)
        context = self.context()
        call = self.request(tool, args, call_id, decided)
        decision = self.engine.decide(call, context)
        self._logged(decision)
        early = self._before(tool, decision)
        if early is not None:
            return early.value()
        signed = {**call, "args": decided}  # what the executor runs: the arguments the engine decided on
        return Authorization(signed, context, self.issuer.token(decision, signed, context), decision.decision_id)

    def report(self, authorization: Authorization | str, outcome: str = "ok") -> Any:
        """The executor's outcome (`ok`, `failed`) of an authorized call: its completion,
        whose effects are returned (a `CompletionError` as `Engine.complete` raises it)."""
        decision_id = authorization if isinstance(authorization, str) else authorization.decision_id
        effects = self.engine.complete(decision_id, outcome, self.context().get("time"))
        self._logged_completion(decision_id, outcome, effects)
        return effects

    # ---- the parts both paths share ---------------------------------------------------

    def _logged(self, decision: Decision) -> None:
        if self.log is not None and self.log.enabled:  # the decision's JSON only when it is logged
            self.log.decision(self._caller(), decision.to_json())

    def _logged_completion(self, decision_id: str, outcome: str, effects: Any) -> None:
        if self.log is not None and self.log.enabled:
            self.log.completion(self._caller(), completion_json(decision_id, outcome, effects))

    def _caller(self) -> str:
        agent = self.context()["agent"]
        return str(agent.get("id", "")) if isinstance(agent, dict) else ""

    def _before(self, tool: str, decision: Decision) -> _Early | None:
        """What the call answers without running the tool, or None to run it."""
        if not decision.allowed:
            denial = Denial.of(tool, decision)
            if self.on_deny == "raise":
                return _Early(error=Denied(denial))
            return _Early(value=denial)
        if decision.repeat:
            kept = self.results.get(decision.decision_id)
            if kept is None or kept.running:
                return _Early(value=AlreadyDone(tool, decision.decision_id, running=kept is not None))
            return _Early(value=kept.value, error=kept.error)
        return None

    def _decided_args(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        """The model's arguments with the declared defaults filled in: what the engine decided on
        (as given for a tool the policy does not declare: the engine denies it)."""
        decided = dict(args)
        declared = self.policy.tools.get(tool)
        for p in declared.params if declared is not None else ():
            if p.name not in decided and p.default is not None:
                decided[p.name] = p.default.value
        return decided

    def _started(self, tool: str, decision: Decision) -> int | None:
        """The tool's idempotency window; an idempotent call is marked running, so a repeat
        that comes while it runs is answered `AlreadyDone`, never run."""
        window = self.policy.for_tool(tool).idempotent_window
        if window is not None:
            self.results.start(decision.decision_id)
        return window

    def _keep(self, decision: Decision, window: int | None, value: Any, error: BaseException | None) -> None:
        """An idempotent call's result (or exception), kept until its window has passed."""
        if window is not None:
            self.results.finish(decision.decision_id, value, error, decision.time + window, decision.time)

    def _finish(self, decision: Decision, window: int | None, outcome: str, value: Any = None,
                error: BaseException | None = None) -> None:
        self._keep(decision, window, value, error)
        try:
            effects = self.engine.complete(decision.decision_id, outcome, self.context().get("time"))
            self._logged_completion(decision.decision_id, outcome, effects)
        except CompletionStoreError:
            raise  # not applied: the host must know (docs/integrations.md, "What a guarded call does")
        except CompletionError:
            pass  # already completed: its lease expired while the tool ran, and released what it held

    async def _afinish(self, decision: Decision, window: int | None, outcome: str, value: Any = None,
                       error: BaseException | None = None) -> None:
        self._keep(decision, window, value, error)
        try:
            effects = await self.engine.acomplete(decision.decision_id, outcome, self.context().get("time"))
            self._logged_completion(decision.decision_id, outcome, effects)
        except CompletionStoreError:
            raise
        except CompletionError:
            pass


def awaitable(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """`fn` as `acall` runs it: an async function as it is, a sync one in a worker thread,
    so a tool never blocks the event loop."""
    if inspect.iscoroutinefunction(fn):
        return fn

    async def in_thread(**args: Any) -> Any:
        return await asyncio.to_thread(fn, **args)

    return in_thread


class _Early:
    """A guarded call's answer when the tool does not run: a value, or an error to raise."""

    __slots__ = ("result", "error")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.result = value
        self.error = error

    def value(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result
