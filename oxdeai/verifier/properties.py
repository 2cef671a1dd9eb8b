"""`verify`: invariants (Houdini), assertions and the whole-policy checks, in that order.

Contract (soundness): a result is `proved` only when every query it rests on was
answered `unsat` by Z3 over an exact encoding; any `unknown` answer or
`Unsupported` construct makes it `unknown` with the reason. I, the largest set of
invariants that holds initially and is preserved together, is computed first
(invariants.py); every assertion and check assumes only I. A `violated` result
carries a counterexample that has been replayed through the engine and reproduced.
"""

from __future__ import annotations

import time as timer

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.verifier.assertions import Assertions
from oxdeai.verifier.checks import CHECKS, Checks
from oxdeai.verifier.invariants import prove_invariants
from oxdeai.verifier.results import Result
from oxdeai.verifier.solve import DEFAULT_BUDGET, DEFAULT_TIMEOUT

__all__ = ["Result", "verify_policy"]


def verify_policy(policy: CheckedPolicy, timeout_s: float = DEFAULT_TIMEOUT,
                  budget: int = DEFAULT_BUDGET) -> list[Result]:
    results: list[Result] = []
    started = timer.perf_counter()
    verdicts, inductive = prove_invariants(policy, timeout_s, budget)
    elapsed = int((timer.perf_counter() - started) * 1000)
    for inv in policy.invariants:
        v = verdicts[inv.name]
        results.append(Result(inv.name, "invariant", v.status, inv.span, v.counterexample, v.reason, elapsed))
    assertions = Assertions(policy, inductive, timeout_s, budget)
    for decl in policy.asserts:
        started = timer.perf_counter()
        v = assertions.assertion(decl)
        results.append(Result(decl.name, "assertion", v.status, decl.span, v.counterexample, v.reason,
                              int((timer.perf_counter() - started) * 1000)))
    checks = Checks(policy, inductive, timeout_s, budget)
    for check in policy.checks:
        results.extend(CHECKS[check].run(checks))
    return results


def rollout_problems(policy: CheckedPolicy, refuse_unknown: bool = False) -> list[str]:
    """What keeps `policy` from replacing a version in service: each property `verify`
    finds violated (and, when `refuse_unknown`, each it could not prove), in words."""
    refused = ("violated", "unknown") if refuse_unknown else ("violated",)
    return [f"{r.kind} `{r.property}`" + (f" ({r.detail})" if r.detail else "") + f" is {r.status}"
            + (f": {r.reason}" if r.reason else "")
            for r in verify_policy(policy) if r.status in refused]
