"""Helpers the differential and acceptance tests share: asking Z3 whether an encoding
agrees with a concrete value, and pinning a World to one concrete request and state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import z3

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.runtime.engine import Engine
from oxdeai.verifier.encode import encode_value
from oxdeai.verifier.symbolic import World


def agrees(term: Any, value: Any, binds: Sequence[Any] = ()) -> bool:
    """Is `term` equal to `value` under the bindings, for certain?"""
    solver = z3.Solver()
    solver.set("timeout", 20_000)
    solver.add(*binds)
    solver.add(term != encode_value(value))
    return solver.check() == z3.unsat


def bindings(world: World, request: dict[str, Any], state: dict[str, Any], policy: CheckedPolicy) -> list[Any]:
    """Fix the world's variables to the request and the state as the request sees it."""
    engine = Engine(policy, clock=lambda: request["time"])
    engine.import_state(state, request["time"])
    binds = [world.time == request["time"]]
    defaults = {p.name: p.default.value for p in policy.tools[request["tool"]].params if p.default is not None}
    binds += [world.args[k] == encode_value(v) for k, v in {**defaults, **request["args"]}.items()]
    binds += [world.agent[k] == encode_value(v) for k, v in request["agent"].items()]
    for name in policy.states:
        key = engine.state_key(name, request)
        binds.append(world.read(name) == encode_value(engine.read_entry(name, key, request["time"])))
    return binds
