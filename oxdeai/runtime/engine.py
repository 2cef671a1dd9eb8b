"""The decision engine: the nine stages of docs/engine.md, in order.

Contract: `Engine.decide(call, context)` never raises and never fails open: any
bad input is a DENY with a reason, and an unexpected internal failure is a DENY
`internal_error`. A DENY changes no state (nonces, idempotency records and
entries are written only on ALLOW). Decisions depend only on (request, state,
policy); the clock is injectable and only supplies `time` when the host gives
none. `complete(decision_id, outcome)` applies `on complete` effects once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time as wallclock
from collections.abc import Callable
from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import EXPIRED
from oxdeai.runtime import state_files
from oxdeai.runtime.completions import CompletionError, CompletionStoreError, check_completion, completion_writes
from oxdeai.runtime.entries import effect_writes, entry_value, no_state, out_of_range, stamped, state_key, store_clock
from oxdeai.runtime.interpreter import Ctx, compile_expr, eval_expr
from oxdeai.runtime.models import Decision, Effect, PolicyRef, Reason
from oxdeai.runtime.plans import InvariantPlan, StatePlan, ToolPlan, build_plan, state_reads
from oxdeai.runtime.schema import Request, RequestSchema
from oxdeai.runtime.store import (
    Changes,
    Entry,
    EntryKey,
    Horizons,
    MemoryStore,
    Pending,
    StateStore,
    StoreError,
)

__all__ = ["CompletionError", "CompletionStoreError", "Engine"]  # the completion errors live in completions.py


class Engine:
    def __init__(self, policy: CheckedPolicy, store: StateStore | None = None,
                 clock: Callable[[], int] | None = None, max_skew: int | None = None, guard: bool = True) -> None:
        """`guard=False` is the "rules only" evaluation the verifier replays invariant
        counterexamples with (stage 8 skipped); production engines keep the guard."""
        self.policy = policy
        self.policy_ref = policy.memo("policy_ref", lambda: PolicyRef(name=policy.name, version=policy.version,
                                                                     sha256=policy.sha256))
        self.guard = guard
        self.store: StateStore = store if store is not None else MemoryStore(Horizons.of(policy))
        self._remember_id = self.store.remember_id  # bound once: every ALLOW hands it to its Decision
        self.clock = clock if clock is not None else (lambda: int(wallclock.time()))
        self.max_skew = max_skew
        # pydantic models and compiled code are costly to build: once per policy, shared by its engines
        self.schema = policy.memo("request_schema", lambda: RequestSchema(policy.tools, policy.agent))
        consts = dict(policy.consts)
        self._consts = consts
        self.states = policy.memo("engine_states", lambda: {
            s.name: StatePlan(s.name, s.init.value, tuple(compile_expr(k, consts) for k in s.key),
                           s.window.seconds if s.window else None)
            for s in policy.states.values()
        })
        self._invariants = policy.memo("engine_invariants", lambda: tuple(
            InvariantPlan(i.name, compile_expr(i.expr, consts), frozenset(state_reads(i.expr, policy.states)))
            for i in policy.invariants
        ))
        self._plans: dict[str, ToolPlan] = {}  # built on first use: start-up stays cheap for big policies
        self.last_completion_event = 0
        self._has_leases = any(g.lease is not None for g in policy.gates)

    # ---- load time ------------------------------------------------------------

    def plan_for(self, tool: str) -> ToolPlan:
        """The tool's compiled plan, built on first use (outside any store step) and kept."""
        plan = self._plans.get(tool)
        if plan is None:
            plan = self._plans[tool] = build_plan(self.policy, tool, self._consts, self.states, self._invariants)
        return plan

    # ---- deciding --------------------------------------------------------------

    def decide(self, call: Any, context: Any = None) -> Decision:
        """Decide one call. `call` comes from the agent; `context` (agent, time) from the host."""
        host_time = context.get("time") if type(context) is dict else None
        now = host_time if type(host_time) is int and self.max_skew is None else self.clock()
        try:
            validated = self.schema.validate(call, context, now)
            if isinstance(validated, list):
                return self.store.atomic(lambda store: (self._deny_invalid(store, call, validated, now), None))
            request = validated
            if self.max_skew is not None and abs(request.time - now) > self.max_skew:
                reason: Reason = ("invalid_request", "time",
                          f"host time {request.time} is more than {self.max_skew}s from the engine clock")
                return self.store.atomic(lambda store: (self._deny_invalid(store, call, [reason], request.time), None))
            if request.tool not in self._plans:  # compile outside the store's lock: no other step waits on it
                self.plan_for(request.tool)
            decision = self.store.atomic(self._decide, request)
            order = self.store.last_order
            if order is not None:  # a store whose sequence numbers are not its commit order says so
                decision.event = order
            return decision
        except StoreError as exc:  # fail closed: nothing was applied
            reason = ("store_unavailable", None, f"the state store failed: {str(exc)[:200]}")
            return Decision(self.policy_ref, 0, False, None, (reason,), (), (), now, {"error": str(exc)[:200]}, {})
        except Exception as exc:  # fail closed: never raise to the caller, never allow
            reason = ("internal_error", None, f"the engine failed to decide: {type(exc).__name__}")
            return Decision(self.policy_ref, 0, False, None, (reason,), (), (), now, {"error": str(exc)[:200]}, {})

    def _deny_invalid(self, store: StateStore, call: Any, reasons: list[Reason], now: int) -> Decision:
        tool = call.get("tool") if isinstance(call, dict) else None
        tool = tool if isinstance(tool, str) and tool in self.policy.tools else None
        shown = {"tool": tool, "invalid": [list(r) for r in reasons]}
        return Decision(self.policy_ref, store.next_seq(), False, tool, tuple(reasons), (), (), now, shown, {})

    def _decide(self, store: StateStore, req: Request) -> tuple[Decision, Changes | None]:
        changes = Changes()
        clock = store_clock(store)
        if req.time < clock:  # decided at the store's time: time never runs backwards
            req = dataclasses.replace(req, time=clock)
        if self._has_leases:
            self._expire_leases(store, req.time, changes)
        plan = self._plans.get(req.tool) or self.plan_for(req.tool)
        reads: dict[EntryKey, Any] = {}
        ctx = self._ctx(store, req.tool, req.args, req.agent, req.time, reads, changes)

        def deny(reasons: list[Reason]) -> tuple[Decision, Changes | None]:
            seq = store.next_seq()
            return (Decision(self.policy_ref, seq, False, req.tool, tuple(reasons), (), (), req.time, req, reads),
                    stamped(changes, clock, req.time))

        # 2. idempotency
        idem_scope = None
        if plan.idempotent_window is not None:
            if req.idempotency_key is None:
                return deny([("idempotency_key_required", None,
                              f"`{req.tool}` is idempotent: the call needs an `idempotency_key`")])
            idem_scope = (req.agent_id, req.idempotency_key)
            record = store.idempotency(idem_scope)
            if record is not None and req.time - record[1] <= plan.idempotent_window:
                fingerprint, _, original = record
                if isinstance(original, dict):  # a durable store keeps a snapshot
                    original = Decision.from_snapshot(self.policy_ref, original)
                if fingerprint != req.fingerprint():
                    return deny([("idempotency_conflict", None,
                                  "this idempotency key was used for a different call")])
                verdict = self._rules(plan, ctx)
                if verdict[0]:
                    return deny(verdict[0])
                if not verdict[1]:
                    return deny([("no_matching_rule", None, "no allow rule matches this call")])
                return original.as_repeat(store.next_seq()), stamped(changes, clock, req.time)
        # 3. replay
        if self.policy.nonce_window is not None:
            if req.nonce is None:
                return deny([("nonce_required", None, "this policy requires a `nonce` on every call")])
            seen = store.nonce((req.agent_id, req.nonce))
            if seen is not None and req.time - seen <= self.policy.nonce_window:
                return deny([("replay", None, "this nonce was already used")])
        # 4-6. windows roll over as entries are read; deny rules; allow rules
        denied, allowed_by = self._rules(plan, ctx)
        if denied:
            return deny(denied)
        if not allowed_by:
            return deny([("no_matching_rule", None, "no allow rule matches this call")])
        # 7. limit gates
        over = self._gates(plan, ctx)
        if over:
            return deny(over)
        # 8. invariant guard (and the value domain: a decision never shows a value canonical JSON cannot hold)
        writes = effect_writes(plan.effects, self.states, ctx) if plan.effects else {}
        wild = out_of_range(writes) if writes else None
        if wild:
            return deny([("state_out_of_range", name, f"the call would take `{name}` to {value}, outside "
                          f"±(2^53 − 1)") for name, value in wild])
        broken = self._guard(store, plan.invariants, writes, req.time, changes) if writes and self.guard else []
        if broken:
            return deny([("invariant_guard", name, f"the call would break invariant `{name}`")
                         for name in broken])
        # 9. allow: every effect at once
        seq = store.next_seq()
        effects = tuple(sorted((k[0], k[1], before, after) for k, (before, after) in writes.items())) if writes else ()
        for (name, key), (_, after) in writes.items():
            changes.entries[(name, key)] = Entry(after, req.time)  # req.time >= every write: the clock
        decision = Decision(self.policy_ref, seq, True, req.tool, (), tuple(allowed_by), effects, req.time, req, reads,
                            on_id=self._remember_id)
        if req.nonce is not None and self.policy.nonce_window is not None:
            changes.nonces[(req.agent_id, req.nonce)] = req.time
        if idem_scope is not None:
            changes.idempotency[idem_scope] = (req.fingerprint(), req.time, decision)
        deadline = req.time + plan.lease if plan.lease is not None else None
        changes.pending[seq] = Pending(req.tool, req.args, req.agent, req.time, deadline)
        if store.durable:  # another process may complete it: record its id with it
            changes.ids[decision.decision_id] = seq
        return decision, stamped(changes, clock, req.time, always=True)

    def _rules(self, plan: ToolPlan, ctx: Ctx) -> tuple[list[Reason], list[str]]:
        """Stages 5 and 6: every matching deny rule, else every matching allow rule."""
        denies, allows = plan.rules(ctx)
        if denies:
            return [plan.denies[i].deny_reason() for i in denies], []
        return [], [plan.allows[i].name for i in allows]

    @staticmethod
    def _gates(plan: ToolPlan, ctx: Ctx) -> list[Reason]:
        """Stage 7: every limit this call would take past its bound (a negative amount is refused)."""
        over: list[Reason] = []
        for gate in plan.gates:
            amount = gate.amount(ctx)
            current = ctx.read_state(gate.name)
            if amount < 0:
                over.append(("limit_exceeded", gate.name, f"`{gate.name}`: a negative amount ({amount}) is refused"))
            elif current + amount > gate.bound:
                over.append(("limit_exceeded", gate.name,
                             f"`{gate.name}`: {current} + {amount} would exceed {gate.bound}"))
        return over

    # ---- state -----------------------------------------------------------------

    def _read(self, store: StateStore, name: str, key: str, now: int, changes: Changes | None = None) -> Any:
        entry = changes.entries.get((name, key)) if changes is not None else None
        return entry_value(self.states[name], entry if entry is not None else store.entry((name, key)), now)

    def _ctx(self, store: StateStore, tool: str, args: dict[str, Any], agent: dict[str, Any], now: int,
             reads: dict[EntryKey, Any], changes: Changes, outcome: str | None = None,
             call_time: int | None = None) -> Ctx:
        """Entries are read at `now`; `time` in expressions is `call_time` (a completion's
        expressions see the original call's time) or else `now`."""
        time = now if call_time is None else call_time
        if not self.states:
            return Ctx(args, agent, time, tool, no_state, self._consts, outcome)
        ctx: Ctx

        def read_state(name: str) -> Any:
            key = state_key(self.states[name], ctx)
            if (name, key) not in reads:
                reads[(name, key)] = self._read(store, name, key, now, changes)
            return reads[(name, key)]

        ctx = Ctx(args, agent, time, tool, read_state, self._consts, outcome)
        return ctx

    def _guard(self, store: StateStore, invariants: tuple[InvariantPlan, ...],
               writes: dict[EntryKey, tuple[Any, Any]], now: int, changes: Changes) -> list[str]:
        """Stage 8: the invariants this call's writes would turn from true to false. Entries
        the call does not write are read through `changes`: a lease that expired in this
        step is seen expired, as the rules saw it."""
        broken = []
        written_names = {name for name, _ in writes}
        for inv in invariants:
            if not inv.reads & written_names:
                continue
            keys = sorted({key for name, key in writes if name in inv.reads})
            for key in keys:
                def value_at(name: str, after: bool, key: str = key) -> Any:
                    if after and (name, key) in writes:
                        return writes[(name, key)][1]
                    if (name, key) in writes:
                        return writes[(name, key)][0]
                    return self._read(store, name, key, now, changes)

                before_ctx = Ctx({}, {}, now, "", functools.partial(value_at, after=False), self._consts)
                after_ctx = Ctx({}, {}, now, "", functools.partial(value_at, after=True), self._consts)
                if inv.expr(before_ctx) and not inv.expr(after_ctx):
                    broken.append(inv.name)
                    break
        return broken

    # ---- completions -------------------------------------------------------------

    def complete(self, decision_id: str, outcome: str = "ok", time: int | None = None,
                 agent: dict[str, Any] | None = None) -> tuple[Effect, ...]:
        """Report that an allowed call finished; applies its `on complete` effects once.
        `agent`: the record the caller is trusted as (a server's credential); the call must
        have been decided for it (its declared fields), else `CompletionError`, nothing changed."""
        check_completion(outcome, time)
        now = self.clock() if time is None else time
        owner = self.schema.agent_record(agent)[0] if agent is not None else None

        def step(store: StateStore) -> tuple[Any, Changes | None]:
            changes = Changes()
            clock = store_clock(store)
            at = max(now, clock)  # time never runs backwards, for completions too
            self._expire_leases(store, at, changes)
            written = stamped(changes, clock, at)  # expiries apply regardless
            seq = store.seq_for(decision_id)  # in the same step: another engine may have allowed it
            if seq is None:
                return CompletionError(f"unknown decision `{decision_id}`"), written
            pending = changes.pending.get(seq) or store.pending(seq)
            if pending is None:
                return CompletionError(f"decision `{decision_id}` was denied; only allowed calls complete"), written
            if owner is not None and owner != pending.agent:
                return CompletionError(f"decision `{decision_id}` was made for another agent"), written
            if pending.completed is not None:
                return CompletionError(f"decision `{decision_id}` was already completed ({pending.completed})"), \
                    written
            effects = self._complete_one(store, seq, pending, outcome, at, changes)
            self.last_completion_event = store.next_seq()  # orders completions among decisions
            return effects, stamped(changes, clock, at, always=True)

        try:
            result = self.store.atomic(step)
        except StoreError as exc:
            raise CompletionStoreError(f"the state store failed: {str(exc)[:200]}") from exc
        order = self.store.last_order
        if order is not None:
            self.last_completion_event = order
        if isinstance(result, CompletionError):
            raise result
        return result  # type: ignore[no-any-return]

    # ---- for an event loop: a store that does I/O is called from a worker thread ----

    async def adecide(self, call: Any, context: Any = None) -> Decision:
        """`decide`, never blocking the loop on a store round trip (the memory store has none)."""
        return await asyncio.to_thread(self.decide, call, context) if self.store.durable else self.decide(call, context)

    async def acomplete(self, decision_id: str, outcome: str = "ok", time: int | None = None,
                        agent: dict[str, Any] | None = None) -> tuple[Effect, ...]:
        """`complete`, as `adecide` decides."""
        if self.store.durable:
            return await asyncio.to_thread(self.complete, decision_id, outcome, time, agent)
        return self.complete(decision_id, outcome, time, agent)

    def _complete_one(self, store: StateStore, seq: int, pending: Pending, outcome: str, now: int,
                      changes: Changes) -> tuple[Effect, ...]:
        """Apply a call's `on complete` effects at `now`, each declaration whole or not at all:
        one that reads or writes a windowed state whose window has passed since the call is
        dropped (its entries now belong to a later window). Entries are read at `now`, as
        every step reads them; expressions see the call's args, agent and time."""
        plan = self._plans.get(pending.tool) or self.plan_for(pending.tool)
        reads: dict[EntryKey, Any] = {}
        ctx = self._ctx(store, pending.tool, pending.args, pending.agent, now, reads, changes, outcome,
                        call_time=pending.time)
        writes = completion_writes(plan.on_complete, self.states, ctx, pending.time, now)
        applied = []
        for (name, key), (before, after) in sorted(writes.items()):
            changes.entries[(name, key)] = Entry(after, now)
            applied.append((name, key, before, after))
        changes.pending[seq] = Pending(pending.tool, pending.args, pending.agent, pending.time, pending.deadline,
                                       outcome)
        return tuple(applied)

    def _expire_leases(self, store: StateStore, now: int, changes: Changes) -> None:
        """Calls whose lease has passed complete as `expired` at the first event at or after it."""
        for seq in store.due_leases(now):
            pending = store.pending(seq)
            if pending is not None and pending.completed is None:
                self._complete_one(store, seq, pending, EXPIRED, now, changes)

    # ---- inspection: the public surface the verifier's replay, the state files and tests use ----

    def state_key(self, name: str, request: dict[str, Any]) -> str:
        """The key text of state `name`'s entry for `request` ({"tool", "args", "agent", "time"})."""
        ctx = Ctx(request["args"], request["agent"], request["time"], request["tool"], no_state, self._consts)
        return state_key(self.states[name], ctx)

    def read_entry(self, name: str, key: str, now: int) -> Any:
        """The value of entry (name, key) that a step at `now` reads (windows rolled over)."""
        return self.store.atomic(lambda store: (self._read(store, name, key, now), None))

    def evaluate(self, expr: A.Expr | None, request: dict[str, Any], outcome: str | None = None) -> Any:
        """The reference interpreter's value of `expr` for `request` against the store's
        current state, read at the request's time (None: true, as an absent `when`)."""
        if expr is None:
            return True

        def step(store: StateStore) -> tuple[Any, None]:
            ctx = self._ctx(store, request["tool"], request["args"], request["agent"], request["time"], {},
                            Changes(), outcome)
            return eval_expr(expr, ctx), None

        return self.store.atomic(step)

    def planned_tools(self) -> frozenset[str]:
        """The tools whose plans are built: each is built on a tool's first decision, outside the store's lock."""
        return frozenset(self._plans)

    def store_clock(self) -> int:
        """The store's clock: no step is decided at an earlier time (0 for a new store)."""
        return self.store.atomic(lambda store: (store_clock(store), None))

    # ---- state files -------------------------------------------------------------

    def set_entry(self, name: str, key: str, value: Any, at: int) -> None:
        """An operator's write of one entry, at `at` or the store's clock if that is later."""
        state_files.set_entry(self, name, key, value, at)

    def export_state(self) -> dict[str, Any]:
        """The brief's state-file JSON for every entry the store holds (oxdeai.runtime.state_files)."""
        return state_files.export_state(self)

    def import_state(self, data: Any, first_time: int | None = None) -> None:
        """Load a state file; raises StateFileError naming what does not fit the policy.
        Plain values belong to the window of `first_time` (the first request's time)."""
        state_files.import_state(self, data, first_time)

