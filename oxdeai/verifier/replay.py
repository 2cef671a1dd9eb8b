"""Counterexamples: read out of a Z3 model in the brief's shapes, and replayed.

This is the verifier's one bridge to the runtime, and it uses only the engine's public
surface (`decide`, `import_state`, `state_key`, `evaluate`).

Contract: `extract` turns a model of a `World` into `{"request", "state"}` that
`oxdeai eval --request ... --state ...` accepts as written (a fresh nonce and
idempotency key are added where the policy requires them, since replay and
idempotency are outside the verifier's model). The `replay_*` helpers run a
counterexample through the engine; the verifier reports a counterexample only
after its replay reproduces it, and raises `ReplayError` (exit 70) otherwise.
"""

from __future__ import annotations

from typing import Any

import z3

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.models import Decision
from oxdeai.verifier.solve import model_value
from oxdeai.verifier.symbolic import World, state_reads


class ReplayError(Exception):
    """The engine did not reproduce a counterexample: a bug in the encoding or the engine."""

    def __init__(self, what: str, counterexample: dict[str, Any], engine_saw: Any) -> None:
        super().__init__(what)
        self.what = what
        self.counterexample = counterexample
        self.engine_saw = engine_saw


def extract(world: World, model: z3.ModelRef) -> dict[str, Any]:
    policy = world.policy
    tool = world.tool.name
    if world.presence:  # only what the request carries; the engine fills in the defaults
        args = {name: model_value(model, world.provided[name]) for name in world.args
                if z3.is_true(model.eval(world.present[name], model_completion=True))}
    else:
        args = {name: model_value(model, var) for name, var in world.args.items()}
    agent = {name: model_value(model, var) for name, var in world.agent.items()}
    time = model_value(model, world.time)
    request: dict[str, Any] = {"tool": tool, "args": args, "agent": agent, "time": time}
    if policy.nonce_window is not None:
        request["nonce"] = "counterexample-nonce"
    if world.part.idempotent_window is not None:
        request["idempotency_key"] = "counterexample-key"
    engine = Engine(policy, clock=lambda: time)
    state: dict[str, Any] = {}
    used = _states_used(world)
    for name, var in sorted(world.pre.items()):
        value = model_value(model, var)
        decl = policy.states[name]
        if name not in used and value == decl.init.value:
            continue  # an entry the call does not touch, at its initial value: leave it out
        entry: Any = {"value": value, "written": time} if decl.window is not None else value
        if decl.key:
            key = engine.state_key(name, request)
            state.setdefault(name, {})[key] = entry
        else:
            state[name] = entry
    return {"request": request, "state": state}


def _states_used(world: World) -> set[str]:
    policy, part = world.policy, world.part
    used: set[str] = set()
    for rule in part.denies + part.allows:
        used |= state_reads(rule.when, policy)
    for effect in part.effects + part.on_complete:
        used |= {a.target for a in effect.assigns} | state_reads(effect.when, policy)
    used |= {g.name for g in part.gates}
    return used


def _split(request: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    call = {k: v for k, v in request.items() if k not in ("agent", "time")}
    return call, {"agent": request["agent"], "time": request["time"]}


def engine_for(policy: CheckedPolicy, cx: dict[str, Any], guard: bool = True) -> Engine:
    time = cx["request"]["time"]
    engine = Engine(policy, clock=lambda: time, guard=guard)
    engine.import_state(cx["state"], time)
    return engine


def replay(policy: CheckedPolicy, cx: dict[str, Any], guard: bool = True) -> tuple[Engine, Decision]:
    engine = engine_for(policy, cx, guard)
    call, context = _split(cx["request"])
    return engine, engine.decide(call, context)


def describe(decision: Decision) -> str:
    if decision.allowed:
        return f"ALLOW by {', '.join(decision.allowed_by)}"
    return "DENY " + ", ".join(f"{c}({n})" if n else c for c, n, _ in decision.reasons)


