"""Every disagreement the differential suite has found, as a fixed case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oxdeai.dsl.policy import compile_source
from oxdeai.verifier.properties import verify_policy
from oxdeai.verifier.replay import replay
from oxdeai.verifier.symbolic import World
from tests.support import agrees, bindings

CASES = sorted((Path(__file__).parent / "regressions").glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_regression(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    policy, diagnostics = compile_source(case["policy"])
    assert policy is not None, diagnostics
    if case.get("kind") == "verify":  # verify must finish (every counterexample replays) with these results
        results = {r.property: r.status for r in verify_policy(policy, 10.0)}
        for name, status in case["expect"].items():
            assert results[name] == status
        return
    world = World(policy, case["request"]["tool"])
    rules, post = world.rules(), world.post()
    _, decision = replay(policy, {"request": case["request"], "state": case["state"]}, guard=False)
    binds = bindings(world, case["request"], case["state"], policy)
    assert agrees(rules, decision.allowed, binds)
    after = {name: value for name, _, _, value in decision.effects}
    for name, term in post.items():
        if name in after:
            assert agrees(term, after[name], binds)


def test_corpus_is_not_empty() -> None:
    assert CASES
