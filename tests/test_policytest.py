"""`oxdeai test`: policy unit tests, their diffs, coverage and CI reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

CASE = {"name": "a small charge", "request": {"tool": "pay.charge", "args": {"amount": 10, "to": "x"}, "nonce": "n",
                                              "idempotency_key": "k", "agent": {"id": "a", "tier": "pro"},
                                              "time": 1764000000},
        "expect": {"decision": "ALLOW", "rules": ["charge"]}}


def _write(tmp_path: Path, *cases: dict[str, object]) -> Path:
    (tmp_path / "shop.oxp").write_text((EXAMPLES / "shop.oxp").read_text())
    path = tmp_path / "shop.test.json"
    path.write_text(json.dumps({"policy": "shop.oxp", "cases": list(cases)}))
    return path


def test_every_bundled_example_ships_tests_that_pass_and_cover_it() -> None:
    policies = {p.stem for p in EXAMPLES.glob("*.oxp")}
    assert policies == {p.name.removesuffix(".test.json") for p in EXAMPLES.glob("*.test.json")}
    code, out = run_cli("test", str(EXAMPLES), "--threshold", "100")
    assert code == 0 and out.splitlines()[-1].endswith("passed, 0 failed"), out


def test_a_wrong_expectation_fails_with_what_came_instead(tmp_path: Path) -> None:
    wrong = {**CASE, "name": "wrong", "expect": {"decision": "DENY", "codes": ["limit_exceeded"]}}
    code, out = run_cli("test", str(_write(tmp_path, CASE, wrong)))
    assert code == 1 and "PASS" in out and "FAIL" in out
    assert "decision: expected DENY, got ALLOW (allowed by charge)" in out
    assert "codes: expected ['limit_exceeded'], got [] (allowed by charge)" in out
    assert out.splitlines()[-1] == "1 passed, 1 failed"


def test_coverage_names_what_no_case_exercised_and_the_threshold_fails_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path, CASE)
    code, out = run_cli("test", str(path), "--coverage")
    assert code == 0 and "not covered: allow `mail`" in out and "not covered: deny `rival`" in out
    assert "not covered: limit `slots`" in out and "covered: allow `charge`" not in out
    assert run_cli("test", str(path), "--threshold", "90")[0] == 1
    report = json.loads(run_cli("test", str(path), "--format", "json", "--coverage")[1])
    items = {i["name"]: i["covered"] for i in report["files"][0]["coverage"]["items"]}
    assert items["charge"] is True and items["mail"] is False and items["budget"] is True


def test_junit_output_is_junit_xml(tmp_path: Path) -> None:
    wrong = {**CASE, "name": "wrong", "expect": {"decision": "DENY"}}
    code, out = run_cli("test", str(_write(tmp_path, CASE, wrong)), "--format", "junit")
    root = ET.fromstring(out.split("?>", 1)[1])
    assert code == 1 and root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["a small charge", "wrong"]
    assert cases[0].find("failure") is None and "expected DENY" in (cases[1].find("failure").text or "")


@pytest.mark.parametrize("case, message", [
    ({**CASE, "expect": {"decison": "ALLOW"}}, "cases.0.expect.decison: Extra inputs are not permitted"),
    ({"name": "x", "expect": {}}, "give exactly one of `request`, `trace` or `verify`"),
    ({"name": "x", "trace": [CASE["request"]], "expect": []}, "one entry (or null) per trace line"),
])
def test_a_test_file_that_cannot_be_used_is_exit_2_with_the_place(tmp_path: Path, case: dict[str, object],
                                                                   message: str) -> None:
    code, out = run_cli("test", str(_write(tmp_path, case)))
    assert code == 2 and message in out, out


def test_a_verify_expectation(tmp_path: Path) -> None:
    code, out = run_cli("test", str(_write(tmp_path, {"name": "v", "verify": {"budget": "violated"}})))
    assert code == 1 and "verify `budget`: expected violated, got proved" in out
