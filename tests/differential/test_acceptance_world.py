"""The acceptance decisions, decided by the verifier's World as well as by the engine.

Every acceptance request that reaches the rules (schema-valid, past the nonce and
idempotency stages, which a World does not model: it stands for a fresh, valid call)
is pinned into a World with its state; `World.decide()` must give the expected
ALLOW or DENY, and each rule's `matches` the expected rule names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from oxdeai import load_policy
from oxdeai.dsl import ast as A
from oxdeai.verifier.replay import replay
from oxdeai.verifier.symbolic import World
from tests.conftest import ACCEPTANCE
from tests.support import agrees, bindings

BEFORE_THE_RULES = {"invalid_request", "nonce_required", "replay", "idempotency_key_required",
                    "idempotency_conflict"}


def _cases() -> list[tuple[Path, int, dict[str, Any]]]:
    out = []
    for expect in sorted(ACCEPTANCE.rglob("expect.json")):
        for index, want in enumerate(json.loads(expect.read_text()).get("decisions", [])):
            out.append((expect.parent / "policy.oxp", index, want))
    return out


CASES = _cases()


@pytest.mark.parametrize("path,index,want", CASES, ids=[f"{p.parent.name}-{i}" for p, i, _ in CASES])
def test_the_world_decides_each_acceptance_request_as_expected(path: Path, index: int, want: dict[str, Any]) -> None:
    if BEFORE_THE_RULES & set(want.get("codes", [])):
        pytest.skip("decided before the rules, by a stage a World does not model")
    policy = load_policy(path)
    request, state = want["request"], want.get("state", {})
    _, decision = replay(policy, {"request": request, "state": state})
    assert decision.allowed == (want["decision"] == "ALLOW")  # the engine, as test_acceptance checks it
    world = World(policy, request["tool"])
    binds = bindings(world, request, state, policy)
    assert agrees(world.decide(), want["decision"] == "ALLOW", binds), decision.reasons
    if "names" not in want:
        return
    names = set(want["names"])
    if want["decision"] == "ALLOW":
        for rule in world.rules_for(A.RuleKind.ALLOW):
            assert agrees(world.matches(rule), rule.name in names, binds), rule.name
    elif "denied_by_rule" in want.get("codes", []):
        for rule in world.rules_for(A.RuleKind.DENY):
            assert agrees(world.matches(rule), rule.name in names, binds), rule.name
