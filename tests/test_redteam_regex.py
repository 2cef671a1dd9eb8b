"""Regression cases for the outside review's regex findings: `{0}` repetition meant
"unbounded" to the verifier, and backtracking let one argument stall `decide`."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from oxdeai import load_policy
from oxdeai.dsl.policy import compile_source
from oxdeai.dsl.regex import parse_regex
from oxdeai.dsl.regex_automaton import MAX_SIZE, MAX_STATES, accepts, automaton_states
from oxdeai.runtime.engine import Engine
from oxdeai.verifier.properties import verify_policy

HEAD = "policy r version \"1\"\ntool t(s: string)\n"


def statuses(body: str) -> dict[str, str]:
    return {r.property: r.status for r in verify_policy(load_policy(HEAD + body), 10.0)}


def decide(body: str, s: str) -> tuple[bool, list[str]]:
    decision = Engine(load_policy(HEAD + body)).decide({"tool": "t", "args": {"s": s}}, {"agent": {}, "time": 0})
    return decision.allowed, [r[0] for r in decision.reasons]


@pytest.mark.parametrize("zero", ["a{0}", "a{0,0}", "(ab){0}", "(.){0}"])
def test_zero_repetition_matches_only_the_empty_string_in_engine_and_verifier(zero: str) -> None:
    body = f'deny only_empty on t when args.s matches "{zero}"\nallow rest on t\n' \
           f'assert nonempty_allowed: always allow t when len(args.s) > 0\n' \
           f'assert empty_denied: never allow t when len(args.s) == 0\n'
    assert statuses(body) == {"nonempty_allowed": "proved", "empty_denied": "proved"}
    assert decide(body, "") == (False, ["denied_by_rule"])
    assert decide(body, "a") == (True, [])
    assert decide(body, "ab") == (True, [])


def test_zero_repetition_whole_policy_checks_agree_with_the_engine() -> None:
    dead = 'allow dead on t when args.s matches "a{0}" and len(args.s) > 0\nallow rest on t\ncheck no_dead_rules\n'
    assert statuses(dead)["no_dead_rules"] == "violated"
    coverage = 'allow any_empty on t when args.s matches "(.){0}"\ncheck coverage\n'
    assert statuses(coverage)["coverage"] == "violated"
    assert decide(coverage, "b") == (False, ["no_matching_rule"])
    conflicts = 'allow not_a on t when not (args.s matches "a{0}")\ndeny is_a on t when args.s == "a"\n' \
                'check no_conflicts\n'
    assert statuses(conflicts)["no_conflicts"] == "violated"


@contextmanager
def hang_detector(seconds: int) -> Iterator[None]:
    """Fails the test instead of hanging CI (a backtracking matcher takes days here)."""
    def alarm(signum: int, frame: object) -> None:
        raise AssertionError(f"still deciding after {seconds} s")
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("pattern", ["(a+)+", "(a|a)*", "(a*)*b", "(.*)*b", "(a|aa)+", "(\\\\w+\\\\d?)+", ".*.*.*=.*",
                                     "([a-z]+)*@", "(.*a){20}", "(a{1,10}){1,10}b", "(.*(a|b){10}){5}c"])
def test_nested_quantifiers_cannot_stall_a_decision(pattern: str) -> None:
    body = f'allow r on t when args.s matches "{pattern}"\n'
    with hang_detector(20):
        for subject in ["a" * 40 + "!", "a" * 65_535 + "!", ("a" * 64 + "=") * 1008]:
            allowed, _ = decide(body, subject)
            assert allowed is (pattern == ".*.*.*=.*" and "=" in subject)


@pytest.mark.parametrize("pattern", ["(a{100}){100}", "(a{1,100}){1,100}b", "((a{10}){10}){11}"])
def test_check_refuses_what_the_linear_matcher_cannot_build(pattern: str) -> None:
    policy, diagnostics = compile_source(HEAD + f'allow r on t when args.s matches "{pattern}"\n')
    assert policy is None
    (diagnostic,) = [d for d in diagnostics if d.is_error]
    assert diagnostic.code == "E306" and "product may be at most 1000" in diagnostic.message


@pytest.mark.parametrize("pattern", ["[ab]*a[ab]{100}", "(.*\\\\d.{50}){19}", "(.*a.{99}b){10}", ".*a.{11}",
                                     "(a{1,10}){1,100}b"])
def test_check_refuses_patterns_whose_automaton_makes_every_character_costly(pattern: str) -> None:
    """RE2 is linear in the subject, but these make it rebuild automaton states (or run its
    NFA) at each character of a random argument: half a second per decision before."""
    policy, diagnostics = compile_source(HEAD + f'allow r on t when args.s matches "{pattern}"\n')
    assert policy is None
    (diagnostic,) = [d for d in diagnostics if d.is_error]
    assert diagnostic.code == "E306" and "matching automaton is too large" in diagnostic.message


@pytest.mark.parametrize(("pattern", "states"), [
    ("abc", 4), ("[ab]*a[ab]{5}", 64), ("[ab]*a[ab]{10}", 2048), (".*a.{10}", 2048), ("(.{10}){100}", 1001),
    ("a{0}", 1), ("x{0,3}", 4), ("(a|a)*", 1), ("[^x]*x", 2),
])
def test_automaton_state_counts(pattern: str, states: int) -> None:
    """The subset construction counts what a full match needs: `[ab]*a[ab]{k}` must
    remember the last k+1 characters (2^(k+1) states), `.{1000}` counts to 1000."""
    found = automaton_states(parse_regex(pattern), MAX_STATES, MAX_SIZE)
    assert found is not None and found[0] == states


def test_random_arguments_over_the_largest_accepted_automata_decide_correctly() -> None:
    """At the limit, the engine's answers are still RE2's full match (and the automaton's)."""
    rng = random.Random(7)
    for pattern in ["[ab]*a[ab]{10}", ".*a.{10}"]:
        body = f'allow r on t when args.s matches "{pattern}"\n'
        for _ in range(3):
            subject = "".join(rng.choice("ab") for _ in range(65_536))
            assert decide(body, subject)[0] is (subject[-11] == "a")
            assert accepts(parse_regex(pattern), subject) is (subject[-11] == "a")
