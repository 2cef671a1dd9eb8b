"""Assertions: `never allow T when C` and `always allow T when C`, over every state in I.

Contract (soundness): an assertion is `proved` only when, for every tool its patterns
match, no schema-valid request with C true on a state satisfying I is allowed (never)
or denied (always) by stages 5-8; a `violated` one carries a counterexample replayed
through the engine, which agrees on the decision and on C.
"""

from __future__ import annotations

from typing import Any

import z3

from oxdeai.dsl import ast as A
from oxdeai.verifier.encode import Unsupported
from oxdeai.verifier.queries import Prover, Verdict
from oxdeai.verifier.replay import ReplayError, describe, engine_for, replay
from oxdeai.verifier.symbolic import World


class Assertions(Prover):
    def assertion(self, decl: A.AssertDecl) -> Verdict:
        never = decl.mode is A.AssertMode.NEVER
        try:
            for tool in self.tools:
                if not A.matches_any(decl.patterns, tool):
                    continue

                def build(w: World) -> list[Any]:  # the order of the constraints steers which model Z3 shows
                    if never:
                        return [w.decide(), w.holds(decl.when), w.assume(self.inductive)]
                    return [w.holds(decl.when), z3.Not(w.decide()), w.assume(self.inductive)]

                def on_counterexample(cx: dict[str, Any], tool: str = tool) -> Verdict:
                    condition = engine_for(self.policy, cx).evaluate(decl.when, cx["request"])  # on the pre-state
                    _, decision = replay(self.policy, cx)
                    if decision.allowed != never or not condition:
                        raise ReplayError(f"assertion `{decl.name}`", cx, describe(decision))
                    cx["outcome"] = describe(decision)
                    what = "is allowed" if never else "is denied"
                    return Verdict("violated", cx, f"a `{tool}` call {what} ({describe(decision)})")

                verdict = self.ask(build, tool, on_counterexample)
                if verdict is not None:
                    return verdict
        except Unsupported as exc:
            return Verdict("unknown", reason=f"line {exc.span.line}: {exc.why}")
        return Verdict("proved")
