"""Golden diagnostics: each broken policy must fail with this code on this line."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxdeai.dsl.diagnostics import render
from oxdeai.dsl.policy import compile_source, decode_source
from tests.conftest import DATA, run_cli

HEAD = """policy p
agent { id: string, role: "a" | "b", depth: int[0..8] }
tool pay.send(amount: int[1..100], to: string, kind: "x" | "y" = "x")
tool pay.refund(amount: string)
tool log.read(n: int)
state spent: int = 0 per agent.id every 1d
state halted: bool = false
const trusted = {"a", "b"}
"""
BASE = HEAD.count("\n")  # the first line of each case body is BASE + 1

# (body appended to HEAD, expected code, line within the body, 1-based)
CASES: list[tuple[str, str, int]] = [
    # syntax
    ("allow r pay.send", "E103", 1),
    ("allow r on pay.send when", "E104", 1),
    ("allow r on pay.send when args.amount < 1 < 2", "E103", 1),
    ("allow r on pay.send when args.to == \"abc", "E102", 1),
    ("allow r on pay.send when args.amount @ 2", "E101", 1),
    ("allow r on pay.send when args.to == \"\\u{110000}\"", "E105", 1),
    ("limit l on pay.send: sum args.amount <= ", "E104", 1),
    ("\ninvariant i spent <= 3", "E103", 2),
    # names
    ("allow r on pay.send when args.amout > 1", "E203", 1),
    ("allow r on pay.send when agent.rol == \"a\"", "E204", 1),
    ("allow r on pay.send when spnt > 1", "E201", 1),
    ("allow r on pay.send\nallow r on log.read", "E202", 2),
    ("allow r on pay.sned", "E205", 1),
    ("tool pay.send(x: int)", "E206", 1),
    ("tool t.x(a: int, a: int)\nallow r on t.x", "E207", 1),
    ("allow r on pay.send when lenn(args.to) > 1", "E208", 1),
    ("check no_conflict", "E209", 1),
    ("allow r on * when args.amount > 1", "E210", 1),
    ("allow r on pay.send, pay.refund when args.amount > 1", "E211", 1),
    ("state time: int = 0", "E212", 1),
    ("agent { x: int }", "E213", 1),
    ("allow r on pay.send when foo.bar", "E201", 1),
    # types
    ("allow r on pay.send when args.to > 1", "E301", 1),
    ("allow r on pay.send when args.amount", "E302", 1),
    ("allow r on pay.send when args.amount * args.amount > 1", "E303", 1),
    ("allow r on pay.send when args.amount / 0 > 1", "E304", 1),
    ("allow r on pay.send when args.amount % args.amount > 1", "E304", 1),
    ("allow r on pay.send when agent.role == \"c\"", "E305", 1),
    ("allow r on pay.send when args.to matches \"^a\"", "E306", 1),
    ("allow r on pay.send when args.to matches \"a{1,200}\"", "E306", 1),
    ("allow r on pay.send when args.to matches \"\\s+\"", "E306", 1),
    ("invariant i: spent <= args.amount", "E308", 1),
    ("invariant i: spent <= time", "E308", 1),
    ("effect on pay.send: halted = true\neffect on pay.send: halted = false", "E309", 2),
    ("limit l on pay.send: count <= args.amount", "E310", 1),
    ("effect on pay.send when outcome == \"ok\": spent += 1", "E311", 1),
    ("tool t.y(a: int[1..5] = 9)\nallow r on t.y", "E312", 1),
    ("tool t.y(a: int[5..1])\nallow r on t.y", "E313", 1),
    ("allow r on pay.send when args.to in {\"a\", 1}", "E314", 1),
    ("allow r on pay.send when min(args.amount) > 1", "E315", 1),
    ("allow r on pay.send when args.to in args.to", "E316", 1),
    ("state s: int = true", "E318", 1),
    ("state k: int = 0 per args.to\ninvariant i: k <= 1 and spent <= 3", "E319", 2),
    ("effect on pay.send: spent += \"a\"", "E320", 1),
    ("effect on pay.send: halted += 1", "E321", 1),
    ("require nonce within 0s", "E323", 1),
    ("const c = args.amount", "E308", 1),
    ("limit c on pay.send: concurrent <= 2\neffect on pay.send: c -= 1", "E321", 2),
]


@pytest.mark.parametrize("body,code,line", CASES, ids=[f"{c}-{i}" for i, (_, c, _l) in enumerate(CASES)])
def test_golden_error(body: str, code: str, line: int) -> None:
    policy, diagnostics = compile_source(HEAD + body + "\n", "case.oxp")
    assert policy is None
    errors = [(d.code, d.span.line) for d in diagnostics if d.is_error]
    assert (code, BASE + line) in errors, errors


def test_corpus_is_large_enough() -> None:
    assert len({c for _, c, _ in CASES}) >= 30


def test_head_alone_is_clean() -> None:
    policy, diagnostics = compile_source(HEAD + "allow a on pay.*\nallow b on log.read\n")
    assert policy is not None and not [d for d in diagnostics if d.is_error]


def test_all_errors_reported_sorted() -> None:
    body = "allow a on pay.send when args.x > 1\nallow b on pay.send when agent.y == 1\nallow c on nope\n"
    _, diagnostics = compile_source(HEAD + body)
    lines = [d.span.line for d in diagnostics if d.is_error]
    assert lines == sorted(lines) and len(lines) == 3


def test_errors_are_capped() -> None:
    body = "".join(f"allow r{i} on pay.send when args.nope{i} > 1\n" for i in range(80))
    _, diagnostics = compile_source(HEAD + body)
    assert len([d for d in diagnostics if d.is_error]) == 50


SNAPSHOTS = {
    "typo.oxp": "allow small on pay.send\n  when args.ammount <= 5\n",
    "enum.oxp": "allow r on pay.send when agent.role == \"admin\"\n",
    "syntax.oxp": "allow r pay.send\n",
}


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
def test_rendered_snapshot(name: str) -> None:
    source = HEAD + SNAPSHOTS[name]
    _, diagnostics = compile_source(source, name)
    rendered = "\n".join(render(d, name, source) for d in diagnostics if d.is_error) + "\n"
    golden = DATA / "golden" / (Path(name).stem + ".txt")
    assert rendered == golden.read_text(encoding="utf-8")


def test_unreadable_inputs_are_diagnostics(tmp_path: Path) -> None:
    assert decode_source(b"\xff\xfe policy")[1][0].code == "E001"
    assert decode_source(b"  \n")[1][0].code == "E002"
    bad = tmp_path / "bad.oxp"
    bad.write_bytes(b"policy x\n\xff")
    code, out = run_cli("check", str(bad))
    assert code == 1 and "E001" in out
    code, out = run_cli("check", str(tmp_path))
    assert code == 2
    code, out = run_cli("check", str(tmp_path / "missing.oxp"))
    assert code == 2


def test_check_prints_nothing_when_clean(tmp_path: Path) -> None:
    ok = tmp_path / "ok.oxp"
    ok.write_text("policy ok\ntool a.b()\nallow r on a.b\n")
    assert run_cli("check", str(ok)) == (0, "")
