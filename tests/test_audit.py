"""The tamper-evident decision log: a chain of canonical lines with signed checkpoints,
and `oxdeai audit verify` finding every kind of tampering at the line it happened."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxdeai.audit.chain import line_hash
from oxdeai.audit.check import AuditReport, audit_log
from oxdeai.audit.log import DecisionLog
from oxdeai.authz.keys import KeyRing, Signer
from oxdeai.cli import main
from oxdeai.runtime.models import canonical_json

SIGNER = Signer.generate()
KEYS = KeyRing.of(SIGNER)


def record(i: int) -> bytes:
    return canonical_json({"caller": "agent-a", "decision": {"decision": "ALLOW" if i % 3 else "DENY",
                                                             "decision_id": f"d_{i:08d}", "tool": "pay.send"},
                           "event": "decision"})


def write_log(path: Path, count: int, **options: object) -> Path:
    log = DecisionLog(str(path), signer=SIGNER, **options)  # type: ignore[arg-type]
    for i in range(count):
        log.write(record(i))
    log.close()
    return path


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def first_problem(report: AuditReport) -> tuple[int, str]:
    assert report.problems, "tampering went unnoticed"
    problem = report.problems[0]
    return problem.line, problem.what


def rechain(lines: list[bytes], start: int) -> list[bytes]:
    """What an editor without the key can do: recompute every link after an edit."""
    out = lines[:start]
    for raw in lines[start:]:
        value = json.loads(raw)
        value["prev"] = line_hash(out[-1]) if out else "0" * 64
        out.append(canonical_json(value))
    return out


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 records, a checkpoint every 1,000, closed."""
    return write_log(tmp_path_factory.mktemp("big") / "decisions.jsonl", 100_000, capacity=200_000)


def test_a_hundred_thousand_records_verify_and_every_checkpoint_counts(big_log: Path) -> None:
    report = audit_log([str(big_log)], KEYS)
    assert report.ok and not report.unchecked
    (chain,) = report.chains
    assert chain.lines == 100_000 + 100 + 1  # the records, a checkpoint per 1,000, the closing one
    assert chain.checkpoints == 101 and chain.closed and chain.signed == chain.lines
    values = [json.loads(raw) for raw in lines_of(big_log)[:3]]
    assert [v["n"] for v in values] == [0, 1, 2] and values[0]["prev"] == "0" * 64
    assert values[1]["prev"] == line_hash(lines_of(big_log)[0])
    assert canonical_json(values[0]["record"]) == record(0)  # the record kept byte for byte


def test_an_edited_record_is_named(big_log: Path, tmp_path: Path) -> None:
    lines = lines_of(big_log)
    lines[50_000] = lines[50_000].replace(b'"DENY"', b'"ALLOW"').replace(b'"ALLOW","decision_id', b'"DENY","decision_id')
    assert lines[50_000] != lines_of(big_log)[50_000]
    rewrite(tmp_path / "log", lines)
    report = audit_log([str(tmp_path / "log")], KEYS)
    line, what = first_problem(report)
    assert line == 50_002 and f"line {json.loads(lines[50_000])['n']} " in what and "was changed" in what


def test_an_edit_whose_chain_was_rebuilt_is_caught_by_the_next_checkpoint(big_log: Path, tmp_path: Path) -> None:
    lines = lines_of(big_log)
    lines[70_500] = lines[70_500].replace(b"agent-a", b"agent-b")
    rewrite(tmp_path / "log", rechain(lines, 70_500))
    line, what = first_problem(audit_log([str(tmp_path / "log")], KEYS))
    assert json.loads(lines_of(tmp_path / "log")[line - 1])["record"]["event"] == "checkpoint"
    assert 70_501 < line <= 70_501 + 1_001 and "rebuilt" in what


def test_a_cut_tail_shows_as_a_chain_that_does_not_end_closed(big_log: Path, tmp_path: Path) -> None:
    lines = lines_of(big_log)
    for cut in (500, 1):  # inside the last thousand, and the closing checkpoint alone
        rewrite(tmp_path / "log", lines[:-cut])
        line, what = first_problem(audit_log([str(tmp_path / "log")], KEYS))
        assert line == len(lines) - cut and "does not end with its closing checkpoint" in what
    at_checkpoint = max(i for i, raw in enumerate(lines[:-1]) if b'"event":"checkpoint"' in raw)
    rewrite(tmp_path / "log", lines[:at_checkpoint + 1])  # cut exactly after a checkpoint that is not the last
    assert "does not end with its closing checkpoint" in first_problem(audit_log([str(tmp_path / "log")], KEYS))[1]


def small(tmp_path: Path, count: int = 30, **options: object) -> list[bytes]:
    return lines_of(write_log(tmp_path / "decisions.jsonl", count, checkpoint_every=10, **options))


def verify_lines(tmp_path: Path, lines: list[bytes], keys: KeyRing | None = KEYS) -> AuditReport:
    rewrite(tmp_path / "tampered", lines)
    return audit_log([str(tmp_path / "tampered")], keys)


def test_a_reordered_pair_is_named(tmp_path: Path) -> None:
    lines = small(tmp_path)
    lines[4], lines[5] = lines[5], lines[4]
    report = verify_lines(tmp_path, lines)
    assert first_problem(report) == (5, "line 5 comes before line 4: lines were moved out of order")
    assert len(report.problems) == 1  # the pair is one move; the links of the lines themselves hold


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    lines = small(tmp_path)
    del lines[7]
    line, what = first_problem(verify_lines(tmp_path, lines))
    assert line == 8 and "jumps from line 6 to 8: 1 line(s) removed" in what


def test_a_deleted_record_with_the_numbers_rewritten_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    lines = small(tmp_path)
    del lines[3]
    renumbered = [canonical_json({**json.loads(raw), "n": i}) for i, raw in enumerate(lines)]
    line, what = first_problem(verify_lines(tmp_path, rechain(renumbered, 3)))
    assert line == 10 and "checkpoint signs 10 line(s)" in what


def test_a_forged_checkpoint_is_refused(tmp_path: Path) -> None:
    lines = small(tmp_path)
    index = next(i for i, raw in enumerate(lines) if b'"event":"checkpoint"' in raw)
    value = json.loads(lines[index])
    for forger in (Signer.generate(), Signer.generate(kid=SIGNER.kid)):  # an unknown key, and ours by name only
        from oxdeai.audit.chain import checkpoint_token
        token = checkpoint_token(forger, value["chain"], value["n"], value["prev"], int(time.time()), False)
        forged = lines.copy()
        forged[index] = canonical_json({**value, "record": {"checkpoint": token, "event": "checkpoint"}})
        line, what = first_problem(verify_lines(tmp_path, forged))
        assert line == index + 1 and what.startswith("forged checkpoint")


def test_a_line_not_as_written_or_cut_short_is_named(tmp_path: Path) -> None:
    lines = small(tmp_path)
    spaced = lines.copy()
    spaced[2] = spaced[2].replace(b'"n":2,', b'"n": 2,')
    assert first_problem(verify_lines(tmp_path, spaced)) == (3, "the line is not as oxdeai wrote it (not canonical "
                                                               "JSON): it was edited")
    repeated = lines.copy()
    repeated[2] = repeated[2].replace(b'"n":2,', b'"n":2,"n":2,')
    assert first_problem(verify_lines(tmp_path, repeated))[1].startswith("the line is not as oxdeai wrote it")
    (tmp_path / "short").write_bytes(b"".join(line + b"\n" for line in lines)[:-20])
    report = audit_log([str(tmp_path / "short")], KEYS)
    assert any("cut short" in p.what for p in report.problems)


def test_without_keys_the_links_are_checked_and_the_answer_is_inconclusive(tmp_path: Path) -> None:
    lines = small(tmp_path)
    report = verify_lines(tmp_path, lines, keys=None)
    assert report.ok and report.unchecked
    lines[4] = lines[4].replace(b"agent-a", b"agent-z")
    assert not verify_lines(tmp_path, lines, keys=None).ok


def test_rotated_files_keep_one_chain_in_any_order(tmp_path: Path) -> None:
    path = write_log(tmp_path / "decisions.jsonl", 3_000, checkpoint_every=100, rotate_bytes=40_000)
    parts = sorted(str(p) for p in tmp_path.glob("decisions.jsonl*"))
    assert len(parts) >= 4
    for order in (parts, parts[::-1]):
        report = audit_log(order, KEYS)
        assert report.ok and len(report.chains) == 1 and report.chains[0].closed
    for part in parts[:-1]:  # every rotated part ends signed
        assert b'"event":"checkpoint"' in lines_of(Path(part))[-1]
    middle = [p for p in parts if p != str(path)][1]
    line, what = first_problem(audit_log([p for p in parts if p != middle], KEYS))
    assert "are missing" in what


def test_two_writers_appending_to_one_file_keep_two_chains(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    logs = [DecisionLog(str(path), signer=SIGNER, checkpoint_every=7) for _ in range(2)]
    for i in range(200):
        logs[i % 2].write(record(i))
    for log in logs:
        log.close()
    report = audit_log([str(path)], KEYS)
    assert report.ok and len(report.chains) == 2 and all(c.closed and c.lines > 100 for c in report.chains)


def test_a_checkpoint_follows_within_its_time_and_an_open_log_is_accepted_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), signer=SIGNER, checkpoint_seconds=0.2)
    log.write(record(1))
    deadline = time.monotonic() + 10
    while len(lines_of(path)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(lines_of(path)[1])["record"]["event"] == "checkpoint"  # written by time, the log still open
    log.write(record(2))
    time.sleep(0.05)
    report = audit_log([str(path)], KEYS)
    assert "does not end with its closing checkpoint" in first_problem(report)[1]
    opened = audit_log([str(path)], KEYS, allow_open=True)
    assert opened.ok and opened.open_tails
    log.close()
    assert audit_log([str(path)], KEYS).ok


def test_records_a_full_queue_refused_are_told_in_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(str(path), capacity=1, signer=SIGNER)
    for i in range(2_000):
        log.write(record(i))
    log.close()
    assert log.failures > 0
    dropped = [json.loads(raw)["record"] for raw in lines_of(path) if b'"event":"dropped"' in raw]
    assert sum(r["dropped"] for r in dropped) == log.failures
    assert audit_log([str(path)], KEYS).ok


def test_a_checkpoint_is_never_an_authorization_nor_the_reverse(tmp_path: Path) -> None:
    from oxdeai.pep import verify
    lines = small(tmp_path)
    token = next(json.loads(raw)["record"]["checkpoint"] for raw in lines if b'"event":"checkpoint"' in raw)
    refused = verify(token, {"tool": "pay.send", "args": {}}, {}, audience="oxdeai-executor", keys=KEYS, replay=None)
    assert not refused and refused.reason in ("wrong_audience", "malformed")


def test_the_command_line(tmp_path: Path) -> None:
    small(tmp_path)
    (tmp_path / "key.pem").write_bytes(SIGNER.private_pem())
    (tmp_path / "jwks.json").write_text(json.dumps(KEYS.jwks()))
    from cryptography.hazmat.primitives import serialization
    (tmp_path / "public.pem").write_bytes(SIGNER.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    runner = CliRunner()
    log = str(tmp_path / "decisions.jsonl")
    for keys in ("key.pem", "jwks.json", "public.pem"):
        result = runner.invoke(main, ["audit", "verify", log, "--keys", str(tmp_path / keys)])
        assert result.exit_code == 0 and "ok: every line, link and checkpoint checks out" in result.output
    assert runner.invoke(main, ["audit", "verify", log]).exit_code == 3
    lines = lines_of(Path(log))
    del lines[5]
    rewrite(tmp_path / "cut.jsonl", lines)
    result = runner.invoke(main, ["audit", "verify", str(tmp_path / "cut.jsonl"), "--keys", str(tmp_path / "jwks.json")])
    assert result.exit_code == 1 and "cut.jsonl:6" in result.output and "removed" in result.output
    result = runner.invoke(main, ["audit", "verify", str(tmp_path / "cut.jsonl"), "--keys", str(tmp_path / "jwks.json"),
                                  "--format", "json"])
    assert result.exit_code == 1 and json.loads(result.output)["problems"][0]["line"] == 6
    assert runner.invoke(main, ["audit", "verify", str(tmp_path / "nothing.jsonl")]).exit_code == 2
    assert runner.invoke(main, ["audit", "verify", log, "--keys", log]).exit_code == 2
    shown = runner.invoke(main, ["audit", "show", log, "--last", "3"])
    assert shown.exit_code == 0
    header, *rows = shown.output.splitlines()
    assert header.split()[:4] == ["chain", "n", "event", "caller"] and len(rows) == 3
    assert rows[-1].split()[2] == "checkpoint" and "final" in rows[-1]
