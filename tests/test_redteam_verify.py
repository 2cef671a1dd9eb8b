"""Regression cases for the outside review's verifier, diff and front-end findings:
defaults outside the request domain, diff on optional parameters and on `unknown`,
limits checked without I, a concurrent count's sign, and expressions too deep for
the parser, the generated code or the walkers."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxdeai import load_policy
from oxdeai.dsl.policy import compile_source
from oxdeai.runtime.engine import Engine
from oxdeai.verifier.properties import verify_policy
from tests.conftest import json_lines, run_cli


def statuses(source: str) -> dict[str, str]:
    return {r.property: r.status for r in verify_policy(load_policy(source), 10.0)}


def error_codes(source: str) -> list[str]:
    policy, diagnostics = compile_source(source)
    assert policy is None
    return [d.code for d in diagnostics if d.is_error]


@pytest.mark.parametrize("declaration", [
    "tool t(x: int = 9_007_199_254_740_993)",
    "tool t(x: int[0..10_000_000_000_000_000] = 10_000_000_000_000_000)",
    "agent { level: int = -9_007_199_254_740_993 }\ntool t()",
    'tool t(s: string = "' + "x" * 65_537 + '")',
])
def test_a_default_outside_the_request_domain_is_refused(declaration: str) -> None:
    assert error_codes(f"policy d\n{declaration}\nallow any on t\n") == ["E312"]


def test_defaults_at_the_edge_of_the_domain_are_accepted_and_decided() -> None:
    source = ('policy d\ntool t(x: int = 9_007_199_254_740_991, s: string = "' + "y" * 65_536 + '")\n'
              "allow any on t\nassert big: always allow t when args.x == 9_007_199_254_740_991\n")
    assert statuses(source) == {"big": "proved"}
    assert Engine(load_policy(source)).decide({"tool": "t", "args": {}}, {"agent": {}, "time": 0}).allowed


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_diff_a_new_optional_parameter_is_a_compatible_change(tmp_path: Path) -> None:
    old = write(tmp_path, "old.oxp", "policy p\ntool t(a: int[0..10])\nallow r on t\n")
    new = write(tmp_path, "new.oxp", 'policy p\ntool t(a: int[0..10], memo: string = "")\nallow r on t\n')
    for first, second in ((old, new), (new, old)):
        code, out = run_cli("diff", first, second, "--fail-on-new-access", "--format", "json")
        assert code == 0, out
        report = json_lines(out.replace("\n", " "))[0]
        assert report["newly_allowed"] == report["newly_denied"] == report["unknown"] == []


def test_diff_a_new_parameter_that_opens_access_is_found_and_replays(tmp_path: Path) -> None:
    old = write(tmp_path, "old.oxp", "policy p\ntool t(a: int[0..10])\nallow r on t when args.a < 5\n")
    new = write(tmp_path, "new.oxp", "policy p\ntool t(a: int[0..10], force: bool = false)\n"
                                     "allow r on t when args.a < 5 or args.force\n")
    code, out = run_cli("diff", old, new, "--fail-on-new-access", "--format", "json")
    assert code == 1
    (witness,) = json_lines(out.replace("\n", " "))[0]["newly_allowed"]
    assert witness["request"]["args"]["force"] is True and witness["request"]["args"]["a"] >= 5


def test_diff_unknown_never_passes_the_gate(tmp_path: Path) -> None:
    old = write(tmp_path, "old.oxp", 'policy p\ntool t(s: string)\nallow r on t when args.s != "\\u{20000}"\n')
    new = write(tmp_path, "new.oxp", "policy p\ntool t(s: string)\nallow r on t\n")
    code, out = run_cli("diff", old, new, "--fail-on-new-access")
    assert code == 3
    assert "no decision changes" not in out and "inconclusive" in out
    added = write(tmp_path, "added.oxp", 'policy p\ntool t(s: string)\ntool u(s: string)\n'
                                         'allow r on t when args.s != "\\u{20000}"\n'
                                         'allow q on u when args.s == "\\u{20000}"\n')
    code, out = run_cli("diff", old, added, "--fail-on-new-access", "--format", "json")
    assert code == 3, out
    assert any(u["tool"] == "u" and u["direction"] == "added" for u in json_lines(out.replace("\n", " "))[0]["unknown"])


def test_a_limit_amount_is_checked_on_states_satisfying_the_invariants() -> None:
    source = ("policy w\nstate weight: int = 1\ntool bump()\ntool spend()\n"
              "effect on bump: weight += 1\nallow b on bump when weight < 10\nallow s on spend\n"
              "invariant w_pos: weight >= 1 and weight <= 10\n"
              "limit cost on spend: sum weight every 1h <= 100\n")
    assert statuses(source) == {"cost": "proved", "w_pos": "proved"}


def test_a_concurrent_count_is_never_negative_and_verify_proves_it() -> None:
    source = ("policy c\nagent { id: string }\ntool job()\nlimit slots on job: concurrent per agent.id <= 2 lease 90s\n"
              "allow j on job\ninvariant slots_nonneg: slots >= 0\n")
    assert statuses(source) == {"slots": "proved", "slots_nonneg": "proved"}
    engine = Engine(load_policy(source))
    first = engine.decide({"tool": "job", "args": {}}, {"agent": {"id": "a"}, "time": 0})
    engine.set_entry("slots", "a", 0, 1)  # an operator resets the count under a call in flight
    assert engine.complete(first.decision_id, "ok", 2) == (("slots", "a", 0, 0),)


def chain(op: str, n: int) -> str:
    return f" {op} ".join(f'args.s == "v{i}"' for i in range(n))


@pytest.mark.parametrize("condition", [
    chain("or", 240), chain("and", 240), "not " * 240 + "args.x > 1",
    " + ".join(["args.x"] * 240) + " >= 0", "(" * 5000 + "args.x > 1" + ")" * 5000,
    "if args.x > 0 then " * 120 + "true" + " else false" * 120,
])
def test_every_expression_check_accepts_is_decided_and_verified(condition: str) -> None:
    source = f"policy deep\ntool t(s: string, x: int)\nallow r on t when {condition}\n" \
             f"assert some: never allow t when args.x > 1_000_000 and not (args.x > 1_000_000)\n"
    policy = load_policy(source)
    decision = Engine(policy).decide({"tool": "t", "args": {"s": "v7", "x": 3}}, {"agent": {}, "time": 0})
    assert [r[0] for r in decision.reasons] in ([], ["no_matching_rule"])
    assert statuses(source)["some"] == "proved"


@pytest.mark.parametrize("condition", [
    chain("or", 400), "not " * 600 + "args.x > 1", "- " * 3000 + "args.x > 1",
    " + ".join(["args.x"] * 500) + " >= 0", "if args.x > 0 then " * 300 + "true" + " else false" * 300,
])
def test_an_expression_too_deep_is_a_diagnostic(condition: str) -> None:
    assert error_codes(f"policy deep\ntool t(s: string, x: int)\nallow r on t when {condition}\n") == ["E106"]


def test_a_regex_too_deep_is_a_diagnostic() -> None:
    pattern = "(" * 300 + "a" + ")" * 300
    assert error_codes(f'policy deep\ntool t(s: string)\nallow r on t when args.s matches "{pattern}"\n') == ["E306"]


@pytest.mark.parametrize("agent", ["", "agent { role: string }\n", "agent { id: int }\n"])
def test_nonces_and_idempotency_need_a_string_agent_id(agent: str) -> None:
    for line in ("require nonce within 10m", "idempotent on t within 1h"):
        assert error_codes(f"policy n\n{agent}tool t()\nallow a on t\n{line}\n") == ["E326"]
