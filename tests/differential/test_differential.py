"""The interpreter and the Z3 encoding must agree; every `proved` must survive simulation.

Each property prints, on failure, the shrunk policy as .oxp text with the request and
state (Hypothesis `note`), ready for tests/differential/regressions/.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import z3
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.regex import RegexError, parse_regex
from oxdeai.dsl.regex_automaton import accepts
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.interpreter import Ctx, compile_regex, eval_expr
from oxdeai.runtime.rollout import broken_at
from oxdeai.verifier.checks import Checks
from oxdeai.verifier.encode import Env, Unsupported, encode_expr, encode_regex, z3_str
from oxdeai.verifier.invariants import prove_invariants
from oxdeai.verifier.properties import verify_policy
from oxdeai.verifier.replay import extract, replay
from oxdeai.verifier.solve import Answer, solve
from oxdeai.verifier.symbolic import World
from tests.strategies.exprs import TEXTS, Scope, bool_expr, int_expr, str_expr
from tests.strategies.policies import examples, policies, requests, states_for
from tests.support import agrees, bindings

SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": False}


def _report(text: str, request: Any = None, state: Any = None) -> None:
    note("policy:\n" + text)
    if request is not None:
        note("request: " + json.dumps(request, ensure_ascii=False))
    if state is not None:
        note("state: " + json.dumps(state, ensure_ascii=False))


# ---- expression agreement -----------------------------------------------------------

SCOPE = Scope(ints=[A.Arg("n"), A.Name("time"), A.Name("cap")], strs=[A.Arg("s"), A.ToolRef()],
              bools=[A.Arg("b")], sets=[A.Name("names")])
CONSTS = {"cap": 86_400, "names": frozenset({"a", "é"})}


@settings(max_examples=examples(400), **SETTINGS)
@given(st.one_of(bool_expr(SCOPE, 3), int_expr(SCOPE, 3), str_expr(SCOPE, 2)),
       st.integers(-(10**12), 10**12), TEXTS, st.booleans(), st.integers(0, 2**45))
def test_expression_agreement(expr: A.Expr, n: int, s: str, b: bool, t: int) -> None:
    ctx = Ctx({"n": n, "s": s, "b": b}, {}, t, "t0.call", lambda name: None, CONSTS)
    value = eval_expr(expr, ctx)
    env = Env({"n": z3.IntVal(n), "s": z3_str(s), "b": z3.BoolVal(b)}, {}, z3.IntVal(t), "t0.call",
              lambda name: None, CONSTS)
    assert agrees(encode_expr(expr, env), value), (expr, value)


# ---- regex dialect ----------------------------------------------------------------

PATTERN_ALPHABET = st.sampled_from(list("ab.é|()*+?[]^-{},0123") + ["\\d", "\\w", "\\.", "😀"])


@settings(max_examples=examples(400), **SETTINGS)
@given(st.lists(PATTERN_ALPHABET, max_size=10).map("".join),
       st.text(st.sampled_from(list("ab.é-_0\n😀")), max_size=6))
def test_regex_dialect_agreement(pattern: str, subject: str) -> None:
    try:
        node = parse_regex(pattern)
        compiled = compile_regex(pattern)
    except RegexError:
        return  # outside the dialect, or an automaton `check` refuses as too large
    ours = compiled.fullmatch(subject) is not None
    assert accepts(node, subject) == ours, (pattern, subject)  # the automaton check measures RE2's language
    assert agrees(z3.InRe(z3_str(subject), encode_regex(node)), ours), (pattern, subject)


# ---- decisions: the interpreter's stages 5-7 and post-state vs the encoding -------------


@st.composite
def policy_request_state(draw: st.DrawFn) -> tuple[str, CheckedPolicy, dict[str, Any], dict[str, Any]]:
    text, policy = draw(policies())
    request = draw(requests(policy))
    return text, policy, request, draw(states_for(policy, request))


@settings(max_examples=examples(300), **SETTINGS)
@given(policy_request_state())
def test_decision_agreement(case: tuple[str, CheckedPolicy, dict[str, Any], dict[str, Any]]) -> None:
    text, policy, request, state = case
    _report(text, request, state)
    try:
        world = World(policy, request["tool"])
        rules = world.rules()
        post = world.post()
    except Unsupported:
        assume(False)
        return
    engine, decision = replay(policy, {"request": request, "state": state}, guard=False)
    assert "invalid_request" not in decision.codes, decision.reasons
    binds = bindings(world, request, state, policy)
    assert agrees(rules, decision.allowed, binds), decision.reasons
    # stage 8 too: the whole decision, guard and value domain included, as `Decide` encodes it
    _, full = replay(policy, {"request": request, "state": state})
    assert agrees(world.decide(), full.allowed, binds), full.reasons
    if decision.allowed:
        after = {name: value for name, _, _, value in decision.effects}
        for name, term in post.items():
            # an effect whose `when` is false writes nothing: the entry keeps its value
            expected = after[name] if name in after else world.read(name)
            if name in after:
                assert agrees(term, expected, binds), name
            else:
                solver = z3.Solver()
                solver.add(*binds, term != expected)
                assert solver.check() == z3.unsat, name


@settings(max_examples=examples(300), **SETTINGS)
@given(policies(), st.data())
def test_witness_agreement(generated: tuple[str, CheckedPolicy], data: st.DataObject) -> None:
    text, policy = generated
    _report(text)
    tool = data.draw(st.sampled_from(sorted(policy.tools)))
    wanted = data.draw(st.booleans())
    try:
        world = World(policy, tool)
        goal = world.rules() if wanted else z3.Not(world.rules())
        result = solve([world.schema(), goal], 20.0)
    except Unsupported:
        return
    assume(result.answer is Answer.FAILS)
    assert result.model is not None
    cx = extract(world, result.model)
    note("witness: " + json.dumps(cx, ensure_ascii=False))
    _, decision = replay(policy, cx, guard=False)
    assert decision.allowed == wanted, decision.reasons


# ---- proved survives simulation; counterexamples reproduce -------------------------------


STEPS = [0, 1, 30, 59, 61, 3_599, 3_601, 86_399, 86_401, 7 * 86_400,
         -1, -30, -3_601, -86_401]  # host time may run backwards: the store's clock does not


@settings(max_examples=examples(60), **SETTINGS)
@given(policies(), st.data(), st.integers(0, 2**32))
def test_proved_survives_simulation(generated: tuple[str, CheckedPolicy], data: st.DataObject, seed: int) -> None:
    """120 steps of decisions and completions, with host time jumping ahead and back and
    completions arriving windows later: every proved invariant holds on the store after
    every step, the guard never fires for one, and proved assertions hold on every decision."""
    text, policy = generated
    _report(text)
    results = verify_policy(policy, 5.0)  # counterexamples are replayed inside: a mismatch raises
    proved = {r.property for r in results if r.status == "proved" and r.kind == "invariant"}
    invariants = [i for i in policy.invariants if i.name in proved]
    asserted = [a for a in policy.asserts if any(r.property == a.name and r.status == "proved" for r in results)]
    rng = random.Random(seed)
    engine_check = Engine(policy)
    clock = [1_763_942_000]
    engine = Engine(policy, clock=lambda: clock[0])
    pending: list[str] = []
    for step in range(120):
        clock[0] = max(0, clock[0] + rng.choice(STEPS))
        if pending and rng.random() < 0.3:
            try:
                engine.complete(pending.pop(rng.randrange(len(pending))), rng.choice(["ok", "failed"]), clock[0])
            except CompletionError:
                pass  # expired by its lease: a late completion does nothing
        else:
            request = data.draw(requests(policy))
            request.update(time=clock[0], nonce=f"n{step}", idempotency_key=f"k{step}")
            if asserted:  # let the leases due now expire first: assertions speak of the state after them
                with contextlib.suppress(CompletionError):
                    engine.complete("d_no_such_call", "ok", clock[0])
            before = engine.export_state()
            call = {k: v for k, v in request.items() if k not in ("agent", "time")}
            decision = engine.decide(call, {"agent": request["agent"], "time": request["time"]})
            fired = {r[1] for r in decision.reasons if r[0] == "invariant_guard"}
            assert not fired & proved, (step, request, decision.reasons)
            decided_at = decision.time  # the store's time, when the host's was behind it
            for a in asserted:
                if not A.matches_any(a.patterns, request["tool"]) or decision.repeat:
                    continue
                engine_check.import_state(before, decided_at)
                validated = engine_check.schema.validate(call, {"agent": request["agent"], "time": decided_at},
                                                         decided_at)
                seen = {**request, "args": validated.args, "time": decided_at}  # type: ignore[union-attr]
                if a.mode is A.AssertMode.NEVER and decision.allowed:
                    assert not engine_check.evaluate(a.when, seen), (a.name, request)
                if a.mode is A.AssertMode.ALWAYS and a.when is not None and engine_check.evaluate(a.when, seen):
                    assert decision.allowed, (a.name, request, decision.reasons)
            if decision.allowed and not decision.repeat:
                pending.append(decision.decision_id)
        for inv in invariants:
            assert broken_at(engine, inv) is None, (step, inv.name, engine.export_state())


@settings(max_examples=examples(100), **SETTINGS)
@given(policies())
def test_shared_witnesses_change_no_dead_rules_verdict(generated: tuple[str, CheckedPolicy]) -> None:
    """`no_dead_rules` lets one replayed witness request show other rules alive; that
    never changes a definite verdict: a rule is dead with shared witnesses exactly when
    it is dead asking the solver about every rule, wherever both runs have an answer.
    (`unknown` may differ either way: a witness can settle a query the solver cannot,
    and Z3's search depends on the order terms were built in.) The solver runs under a
    deterministic budget, with the wall clock far out of reach, so a loaded machine
    gives the same answers."""
    text, policy = generated
    _report(text)
    budget, backstop = 1_000_000, 300.0  # about half a second at most per query on the CI machine
    _, inductive = prove_invariants(policy, backstop, budget)  # the invariants every check assumes
    shared, alone = Checks(policy, inductive, backstop, budget), Checks(policy, inductive, backstop, budget)
    alone.share_witnesses = False
    verdicts = [{r.detail: r.status for r in checks.no_dead_rules() if r.detail is not None}
                for checks in (shared, alone)]
    for rule in policy.rules:
        with_witnesses, by_solver = (v.get(rule.name, "proved") for v in verdicts)  # absent: alive
        if "unknown" not in (with_witnesses, by_solver):
            assert with_witnesses == by_solver, (rule.name, with_witnesses, by_solver)
