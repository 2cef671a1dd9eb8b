"""Every case under tests/data/acceptance (copied from the shared acceptance set)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ACCEPTANCE, json_lines, run_cli

CASES = sorted(p.parent for p in ACCEPTANCE.rglob("expect.json"))


def _expect(case: Path) -> dict[str, Any]:
    return json.loads((case / "expect.json").read_text())


def _ids(cases: list[Path]) -> list[str]:
    return [str(c.relative_to(ACCEPTANCE)) for c in cases]


def _with(key: str) -> list[Path]:
    return [c for c in CASES if key in _expect(c)]


@pytest.mark.parametrize("case", _with("check"), ids=_ids(_with("check")))
def test_check(case: Path) -> None:
    want = _expect(case)["check"]
    code, out = run_cli("check", "--format", "json", str(case / "policy.oxp"))
    diagnostics = json.loads(out)["files"][0]["diagnostics"]
    error_lines = {d["line"] for d in diagnostics if d["severity"] == "error"}
    if want["ok"]:
        assert code == 0 and not error_lines, diagnostics
    else:
        assert code == 1
        assert error_lines == set(want["lines"]), diagnostics


def _assert_decision(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["decision"] == want["decision"], (got["reasons"], want)
    assert got["allowed"] == (want["decision"] == "ALLOW")
    if "codes" in want:
        assert {r["code"] for r in got["reasons"]} == set(want["codes"])
    if "names" in want:
        if want["decision"] == "ALLOW":
            assert set(got["allowed_by"]) == set(want["names"])
        else:
            assert {r["name"] for r in got["reasons"]} == set(want["names"])


DECISIONS = [(c, i) for c in _with("decisions") for i in range(len(_expect(c)["decisions"]))]


@pytest.mark.parametrize("case,index", DECISIONS, ids=[f"{c.name}-{i}" for c, i in DECISIONS])
def test_decision(case: Path, index: int) -> None:
    want = _expect(case)["decisions"][index]
    args = ["eval", str(case / "policy.oxp"), "--request", json.dumps(want["request"])]
    if "state" in want:
        args += ["--state", json.dumps(want["state"])]
    code, out = run_cli(*args)
    assert code == 0, out
    (got,) = json_lines(out)
    _assert_decision(got, want)


TRACES = [(c, i) for c in _with("traces") for i in range(len(_expect(c)["traces"]))]


@pytest.mark.parametrize("case,index", TRACES, ids=[f"{c.name}-{i}" for c, i in TRACES])
def test_trace(case: Path, index: int, tmp_path: Path) -> None:
    spec = _expect(case)["traces"][index]
    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join(json.dumps(line) for line in spec["trace"]) + "\n")
    code, out = run_cli("eval", str(case / "policy.oxp"), "--trace", f"@{trace}")
    assert code == 0, out
    got = json_lines(out)
    assert len(got) == len(spec["expect"])
    for line, want in zip(got, spec["expect"], strict=True):
        if want is None:
            assert "complete" in line and "error" not in line, line
        else:
            _assert_decision(line, want)


VERIFY = _with("verify")


def _within(value: Any, bound: Any) -> bool:
    if isinstance(bound, list):
        return bound[0] <= value <= bound[1]
    return bool(value == bound)


def _lookup(request: dict[str, Any], dotted: str) -> Any:
    base, name = dotted.split(".", 1)
    return request[base][name]


def _state_values(state: dict[str, Any], name: str) -> list[int]:
    entry = state[name]
    entries = entry.values() if isinstance(entry, dict) and "value" not in entry else [entry]
    return [e["value"] if isinstance(e, dict) else e for e in entries]


@pytest.mark.parametrize("case", VERIFY, ids=_ids(VERIFY))
def test_verify(case: Path) -> None:
    expect = _expect(case)
    code, out = run_cli("verify", "--format", "json", str(case / "policy.oxp"))
    results = json.loads(out)["files"][0]["results"]
    statuses: dict[str, set[str]] = {}
    for r in results:
        statuses.setdefault(r["property"], set()).add(r["status"])
    for prop, status in expect["verify"].items():
        assert statuses[prop] == {status}, (prop, results)
    assert code == expect["verify_exit"]
    for prop, bounds in expect.get("verify_counterexample", {}).items():
        (cx,) = [r["counterexample"] for r in results if r["property"] == prop and r["counterexample"]]
        assert cx["request"]["tool"] == bounds["tool"]
        for name, low in bounds.get("state_min", {}).items():
            assert min(_state_values(cx["state"], name)) >= low
        # the counterexample reproduces through `oxdeai eval`: the run-time guard stops the call
        code, out = run_cli("eval", str(case / "policy.oxp"), "--request", json.dumps(cx["request"]),
                            "--state", json.dumps(cx["state"]))
        (decision,) = json_lines(out)
        assert decision["decision"] == "DENY" and {r["name"] for r in decision["reasons"]} == {prop}


DIFFS = _with("diff")


@pytest.mark.parametrize("case", DIFFS, ids=_ids(DIFFS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_diff(case: Path, reverse: bool) -> None:
    expect = _expect(case)
    spec = expect["reverse_diff" if reverse else "diff"]
    old, new = case / expect["diff"]["old"], case / expect["diff"]["new"]
    if reverse:
        old, new = new, old
    code, out = run_cli("diff", str(old), str(new), "--format", "json")
    assert code == 0
    report = json.loads(out)
    assert sorted({w["tool"] for w in report["newly_allowed"]}) == sorted(spec["newly_allowed_tools"])
    assert sorted({w["tool"] for w in report["newly_denied"]}) == sorted(spec["newly_denied_tools"])
    code, _ = run_cli("diff", str(old), str(new), "--fail-on-new-access")
    assert code == spec["exit_with_fail_on_new_access"]
    for witness in report["newly_allowed"]:
        for dotted, bound in spec.get("newly_allowed_witness_bounds", {}).items():
            assert _within(_lookup(witness["request"], dotted), bound), (dotted, witness)
        # replayable through both versions
        decisions = {}
        for path in (old, new):
            code, out = run_cli("eval", str(path), "--request", json.dumps(witness["request"]),
                                "--state", json.dumps(witness["state"]))
            assert code == 0, out
            decisions[path] = json_lines(out)[0]["decision"]
        assert decisions == {old: "DENY", new: "ALLOW"}
