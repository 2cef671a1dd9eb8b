"""Checking a decision log: every line as written, every link, every checkpoint.

Contract: `audit_log(paths, keys, allow_open)` reads the files (a log and its rotated
parts, in any order) and returns an `AuditReport`: per chain, its lines, checkpoints
and whether it ends closed; and every problem found, in file order, each naming the
file, the line and what is wrong with it:

- a line that is not the canonical JSON of a chain line (edited by hand, cut short);
- within a file, a chain's line numbers must rise by one from line to line: a number
  lower than expected is a line moved out of order, a higher one means lines were
  removed; across the files a chain's numbers must run from 0 without a gap;
- each line carries the hash of the chain's line before it: a mismatch means that
  line was changed after it was written;
- each checkpoint must verify with one of `keys` and sign exactly the lines before it
  (their count and the last one's hash): a checkpoint that does not is forged, or
  the lines before it were rewritten and re-chained;
- a chain must end with its closing (`final`) checkpoint; one that does not has lost
  its tail, or its writer is still running or was killed — `allow_open` accepts that
  and reports how many lines no checkpoint covers yet.

Without `keys`, the links are checked and the checkpoints are not (`unchecked`): the
chain then shows accidental damage, not a deliberate rewrite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from oxdeai.audit.chain import GENESIS, checkpoint_claims, line_hash, unverified_claims
from oxdeai.runtime.models import canonical_json

if TYPE_CHECKING:
    from oxdeai.authz.keys import KeyRing

HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based line of the file
    chain: str | None
    n: int | None
    what: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" + (f" (chain {self.chain} line {self.n})" if self.chain else "")
        return f"{where}: {self.what}"


@dataclass
class ChainReport:
    id: str
    lines: int = 0
    checkpoints: int = 0
    closed: bool = False
    signed: int = 0  # lines covered by a verified checkpoint
    last_time: int | None = None  # the last checkpoint's time


@dataclass
class AuditReport:
    files: list[str]
    lines: int = 0
    chains: list[ChainReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unchecked: bool = False  # no keys: checkpoints were not verified
    open_tails: list[str] = field(default_factory=list)  # notes on chains accepted open

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Line:
    file: str
    number: int
    chain: str
    n: int
    prev: str
    record: dict[str, Any]
    hash: str


def audit_log(paths: list[str], keys: KeyRing | None, allow_open: bool = False) -> AuditReport:
    report = AuditReport(files=list(paths), unchecked=keys is None)
    segments: dict[str, list[list[_Line]]] = {}
    for path in paths:
        for segment in _read_file(path, report).values():
            segments.setdefault(segment[0].chain, []).append(segment)
    for chain_id in sorted(segments, key=lambda c: (segments[c][0][0].file, segments[c][0][0].number)):
        lines = _join(segments[chain_id], report)
        report.chains.append(_check_chain(chain_id, lines, keys, allow_open, report))
    report.problems.sort(key=lambda p: (paths.index(p.file), p.line))
    return report


def _read_file(path: str, report: AuditReport) -> dict[str, list[_Line]]:
    """The file's chain lines, by chain, each chain's lines in file order, with the
    problems of lines that cannot be read or that break the order within the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        report.problems.append(Problem(path, 0, None, None, f"cannot read the file: {exc.strerror or exc}"))
        return {}
    rows = data.split(b"\n")
    if rows and rows[-1] == b"":
        rows.pop()
    elif rows:
        report.problems.append(Problem(path, len(rows), None, None, "the last line is cut short (no newline)"))
    parsed = [line for number, raw in enumerate(rows, 1) if (line := _parse(path, number, raw, report))]
    report.lines += len(rows)
    numbers: dict[str, set[int]] = {}
    for line in parsed:
        numbers.setdefault(line.chain, set()).add(line.n)
    chains: dict[str, list[_Line]] = {}
    for line in parsed:
        seen = chains.setdefault(line.chain, [])
        what = _out_of_place(line, max(x.n for x in seen[-2:]) if seen else None, numbers[line.chain], report)
        if what:
            report.problems.append(Problem(path, line.number, line.chain, line.n, what))
        seen.append(line)
    return chains


def _out_of_place(line: _Line, before: int | None, present: set[int], report: AuditReport) -> str | None:
    """Why the line cannot follow line `before` of its chain in one file (the higher of
    the two lines before it, so the second half of a swapped pair is not a second move),
    if it cannot."""
    if before is None or line.n == before + 1:
        return None
    if line.n > before + 1:
        if before + 1 in present:
            return f"line {line.n} comes before line {before + 1}: lines were moved out of order"
        return f"the chain jumps from line {before} to {line.n}: {line.n - before - 1} line(s) removed here"
    last = report.problems[-1] if report.problems else None
    if last is not None and last.file == line.file and last.line == line.number - 1 and "moved" in last.what:
        return None  # the other half of the move just reported
    return f"line {line.n} comes after line {before}: lines were moved out of order"


def _parse(path: str, number: int, raw: bytes, report: AuditReport) -> _Line | None:
    def bad(what: str) -> None:
        report.problems.append(Problem(path, number, None, None, what))

    try:
        value = orjson.loads(raw)  # a repeated key or any other liberty fails the canonical check below
    except (UnicodeDecodeError, ValueError) as exc:
        bad(f"not a JSON line ({str(exc)[:80]})")
        return None
    if not (isinstance(value, dict) and set(value) == {"chain", "n", "prev", "record"}
            and isinstance(value["chain"], str) and type(value["n"]) is int and value["n"] >= 0
            and isinstance(value["prev"], str) and HEX64.fullmatch(value["prev"])
            and isinstance(value["record"], dict)):
        bad("not a chain line: one has exactly `chain`, `n`, `prev` and `record`")
        return None
    if canonical_json(value) != raw:
        bad("the line is not as oxdeai wrote it (not canonical JSON): it was edited")
        return None
    return _Line(path, number, value["chain"], value["n"], value["prev"], value["record"], line_hash(raw))


def _join(segments: list[list[_Line]], report: AuditReport) -> list[_Line]:
    """A chain's lines from all files in line-number order, with a problem for a gap or
    an overlap between its parts."""
    lines: list[_Line] = []
    for segment in sorted((sorted(s, key=lambda line: line.n) for s in segments), key=lambda s: s[0].n):
        expected = lines[-1].n + 1 if lines else 0
        first = segment[0]
        if first.n > expected:
            report.problems.append(Problem(first.file, first.number, first.chain, first.n,
                                           f"lines {expected}..{first.n - 1} of the chain are missing"))
        elif first.n < expected:
            report.problems.append(Problem(first.file, first.number, first.chain, first.n,
                                           f"line {first.n} of the chain appears twice"))
        lines.extend(segment)
    return lines


def _check_chain(chain_id: str, lines: list[_Line], keys: KeyRing | None, allow_open: bool,
                 report: AuditReport) -> ChainReport:
    out = ChainReport(chain_id, lines=len(lines))
    previous: _Line | None = None
    for line in lines:
        if previous is not None and out.closed:
            _problem(report, line, "a line after the chain's closing checkpoint")
        follows = line.n == 0 if previous is None else line.n == previous.n + 1  # gaps are reported already
        if follows and line.prev != (GENESIS if previous is None else previous.hash):
            what = ("the first line of a chain carries 64 zeros" if previous is None else
                    f"line {previous.n} ({previous.file}:{previous.number}) was changed after it was written: "
                    f"this line carries another hash for it")
            _problem(report, line, what)
        if line.record.get("event") == "checkpoint":
            _check_checkpoint(line, keys, out, report)
        previous = line
    if not out.closed and lines:
        tail = len(lines) - out.signed
        note = (f"chain {chain_id} does not end with its closing checkpoint: its last {tail} line(s) "
                f"are not covered by a checkpoint")
        if allow_open:
            report.open_tails.append(note + " (accepted: --open)")
        else:
            _problem(report, lines[-1], note + ": its tail may have been cut, or its writer is still running or "
                                              "was stopped without closing the log (--open accepts that)")
    return out


def _check_checkpoint(line: _Line, keys: KeyRing | None, out: ChainReport, report: AuditReport) -> None:
    out.checkpoints += 1
    token = line.record.get("checkpoint")
    if not isinstance(token, str):
        _problem(report, line, "a checkpoint without its signed token")
        return
    if keys is None:
        out.closed = out.closed or unverified_claims(token).get("final") is True
        return
    claims = checkpoint_claims(token, keys)
    if isinstance(claims, str):
        _problem(report, line, f"forged checkpoint: {claims}")
        return
    if claims["chain"] != line.chain or claims["count"] != line.n or claims["head"] != line.prev:
        _problem(report, line, f"the checkpoint signs {claims['count']} line(s) ending in hash "
                               f"{str(claims['head'])[:12]}…, not the {line.n} before it: lines before it were "
                               f"changed, removed or added and the chain rebuilt")
        return
    if out.last_time is not None and claims["iat"] < out.last_time:
        _problem(report, line, "the checkpoint is dated before the one before it")
    out.last_time = claims["iat"]
    out.signed = line.n + 1
    out.closed = claims["final"] is True


def _problem(report: AuditReport, line: _Line, what: str) -> None:
    report.problems.append(Problem(line.file, line.number, line.chain, line.n, what))
