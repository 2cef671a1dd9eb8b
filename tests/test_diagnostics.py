"""Golden diagnostics: each broken policy must fail with this code on this line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from oxdeai.dsl.diagnostics import render
from oxdeai.dsl.policy import compile_source, decode_source
from tests.conftest import DATA, run_cli

GOLDEN = DATA / "diagnostics"
HEAD = (GOLDEN / "head.oxp").read_text(encoding="utf-8")
BASE = HEAD.count("\n")  # a chunk's first line is line BASE + 1 of the compiled source
MARKER = re.compile(r'###\s+(E\d{3})\s+"(.*)"\s*$')


@dataclass(frozen=True)
class Chunk:
    file: str
    first_line: int  # where the chunk starts in its file, for the failure message
    body: str
    expected: tuple[tuple[str, int, str], ...]  # (code, line in the compiled source, message regex)


def _chunks() -> list[Chunk]:
    """Every chunk of tests/data/diagnostics/*.oxp but head.oxp (the format is in their headers)."""
    out = []
    for path in sorted(GOLDEN.glob("*.oxp")):
        if path.name == "head.oxp":
            continue
        lines = path.read_text(encoding="utf-8").split("\n")
        starts = [i + 1 for i, line in enumerate(lines) if line == "---"]
        for start, end in zip(starts, [s - 1 for s in starts[1:]] + [len(lines)], strict=True):
            body = lines[start:end]
            while body and body[-1] == "":
                body.pop()
            # a marker alone on its line speaks of the line above
            expected = tuple((m.group(1), BASE + 1 + i - line.startswith("###"), m.group(2))
                             for i, line in enumerate(body) if (m := MARKER.search(line)))
            out.append(Chunk(path.name, start + 1, "\n".join(body) + "\n", expected))
    return out


CHUNKS = _chunks()


@pytest.mark.parametrize("chunk", CHUNKS, ids=[f"{c.file}:{c.first_line}" for c in CHUNKS])
def test_golden_error(chunk: Chunk) -> None:
    policy, diagnostics = compile_source(HEAD + chunk.body, "case.oxp")
    assert policy is None
    errors = [d for d in diagnostics if d.is_error]
    assert sorted((d.code, d.span.line) for d in errors) == sorted((c, line) for c, line, _ in chunk.expected), \
        [(d.code, d.span.line, d.message) for d in errors]
    for code, line, regex in chunk.expected:
        (found,) = [d for d in errors if (d.code, d.span.line) == (code, line)]
        assert re.search(regex, found.message), (regex, found.message)


def test_every_chunk_expects_an_error_and_the_corpus_covers_the_codes() -> None:
    assert all(c.expected for c in CHUNKS)
    assert len({code for c in CHUNKS for code, _, _ in c.expected}) >= 30


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
