"""Which tools can ever be allowed for one agent: what `oxdeai mcp-proxy` lists.

Contract: `allowable_tools(policy, agent)` answers, for every declared tool, one of
  "yes"     — the solver found a request from this agent, in a state that meets the
              proved invariants, that the policy allows; the witness is replayed
              through the engine, which allows it too (else `ReplayError`);
  "no"      — the solver proved that no such request exists (`unsat`): no request
              from this agent is allowed in any state the invariants admit, and every
              reachable state meets them, so the engine never allows one;
  "unknown" — the solver could not tell (budget, an unsupported construct), with why.
The agent record is the host's, fixed field by field (the fields the policy declares);
the arguments, the time and the state are free. Nonce and idempotency are outside the
question: a fresh nonce and key are always available to a caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.verifier.encode import Unsupported, encode_value
from oxdeai.verifier.invariants import prove_invariants
from oxdeai.verifier.queries import Prover
from oxdeai.verifier.replay import ReplayError, describe, extract, replay
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIMEOUT, Answer
from oxdeai.verifier.symbolic import World


@dataclass(frozen=True)
class Reach:
    answer: str  # yes | no | unknown
    reason: str | None = None  # why, for unknown
    witness: dict[str, Any] | None = None  # an allowed request, for yes


def allowable_tools(policy: CheckedPolicy, agent: dict[str, Any], timeout_s: float = DEFAULT_TIMEOUT,
                    budget: int = DEFAULT_BUDGET) -> dict[str, Reach]:
    """Every declared tool, in declaration order, with whether this agent can ever be allowed it."""
    inductive = prove_invariants(policy, timeout_s, budget)[1]
    prover = Prover(policy, inductive, timeout_s, budget)
    out: dict[str, Reach] = {}
    for tool in policy.tools:
        try:
            out[tool] = _reach(prover, tool, agent)
        except Unsupported as exc:
            out[tool] = Reach("unknown", exc.why)
    return out


def _reach(prover: Prover, tool: str, agent: dict[str, Any]) -> Reach:
    def build(w: World) -> list[Any]:
        pinned = [w.agent[name] == encode_value(value) for name, value in agent.items() if name in w.agent]
        return [*pinned, w.decide(), w.assume(prover.inductive)]

    result, world = prover.query(build, tool, readable=False)
    if result.answer is Answer.HOLDS:
        return Reach("no")
    if result.answer is Answer.UNKNOWN:
        return Reach("unknown", result.reason)
    assert result.model is not None
    cx = extract(world, result.model)
    _, decision = replay(prover.policy, cx)
    if not decision.allowed:
        raise ReplayError(f"an allowed `{tool}` call", cx, describe(decision))
    return Reach("yes", witness=cx["request"])
