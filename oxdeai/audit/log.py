"""The decision log: every decision and completion, one chained canonical JSON line each.

Contract: `DecisionLog.write(record)` never blocks and never raises: records (canonical
JSON bytes) go to a bounded queue that one writer thread drains to the file (or
stdout), flushing after each batch. The writer owns the log's hash chain
(audit/chain.py): each record becomes a chain line in the order written; with a
`signer`, a signed checkpoint follows every `checkpoint_every` records or
`checkpoint_seconds` of wall-clock time with records unsigned, and a closing (`final`)
checkpoint is written by `close()`. With `rotate_bytes`, a file that has grown past it
is closed with a checkpoint and renamed `PATH.CHAIN-FIRSTLINE` (the chain goes on in a
fresh PATH; `oxdeai audit verify PATH*` checks the parts together).

A record that cannot be queued (the writer has fallen `capacity` records behind) or
written (a full disk, a closed pipe) is counted in `failures`, reported once per
episode on stderr, and `healthy` is False until a later write succeeds — `/readyz`
says so. Neither is a silent hole: records the queue refused are counted in a
`{"event": "dropped"}` line of the chain, and lines the file refused leave a gap that
`oxdeai audit verify` reports. A record holds the request's hash, never
its arguments (the language has no way to mark an argument secret, so none is logged).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time as wallclock
from typing import TYPE_CHECKING, Any, BinaryIO

from oxdeai.audit.chain import Chain
from oxdeai.runtime.models import canonical_json

if TYPE_CHECKING:
    from oxdeai.authz.keys import Signer


def completion_json(decision_id: str, outcome: str, effects: Any) -> bytes:
    """A completion as the service answers it and the log records it (canonical JSON);
    `effects` as `Engine.complete` returns them."""
    return canonical_json({"decision_id": decision_id, "outcome": outcome, "effects": [
        {"state": s, "key": k or None, "before": b, "after": a} for s, k, b, a in effects]})


class DecisionLog:
    def __init__(self, path: str | None, capacity: int = 100_000, *, signer: Signer | None = None,
                 checkpoint_every: int = 1_000, checkpoint_seconds: float = 60.0, rotate_bytes: int | None = None,
                 who: str = "oxdeai serve") -> None:
        """`path`: a file to append to; "-" for stdout; None for no log. `who` prefixes
        the error lines on stderr."""
        self.path = path
        self.who = who
        self.failures = 0
        self.healthy = True
        self.problem: str | None = None
        self.chain = Chain(signer)
        self.checkpoint_every = checkpoint_every
        self.checkpoint_seconds = checkpoint_seconds
        self.rotate_bytes = rotate_bytes if path not in (None, "-") else None
        self._queue: queue.Queue[bytes | None] = queue.Queue(capacity)
        self._out: BinaryIO | None = None
        self._thread: threading.Thread | None = None
        self._first_in_file = 0
        self._dropped = 0  # records refused by a full queue, told in the chain by the writer
        self._dropped_lock = threading.Lock()
        if path is not None:
            self._out = self._open()
            self._thread = threading.Thread(target=self._drain, name="oxdeai-decision-log", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def write(self, record: bytes) -> None:
        if self._out is None:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._dropped_lock:
                self._dropped += 1
            self._failed("the decision log's writer is behind; lines are being dropped")

    def decision(self, caller: str, decision_json: bytes) -> None:
        """A decision's record: who asked, and the decision's own canonical JSON."""
        if self._out is not None:
            self.write(b'{"caller":' + canonical_json(caller) + b',"decision":' + decision_json + b',"event":"decision"}')

    def completion(self, caller: str, completion: bytes) -> None:
        """A completion's record; `completion` is `completion_json(...)`."""
        if self._out is not None:
            self.write(b'{"caller":' + canonical_json(caller) + b',"completion":' + completion
                       + b',"event":"completion"}')

    def event(self, **fields: object) -> None:
        """A record from plain fields (canonical JSON)."""
        if self._out is not None:
            self.write(canonical_json(fields))

    def close(self) -> None:
        """Write what is queued and the closing checkpoint, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        if self._out is not None and self.path != "-":
            self._out.close()

    def _open(self) -> BinaryIO:
        assert self.path is not None
        if self.path == "-":
            return sys.stdout.buffer
        # unbuffered: one write(2) per batch, so workers appending to one file never split a line
        return open(self.path, "ab", buffering=0)  # noqa: SIM115

    def _drain(self) -> None:
        assert self._out is not None
        last_checkpoint = wallclock.monotonic()
        while True:
            wait = max(0.0, last_checkpoint + self.checkpoint_seconds - wallclock.monotonic())
            try:
                records = [self._queue.get(timeout=wait)]
            except queue.Empty:
                records = []
            while records and len(records) < 1000:
                try:
                    records.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in records
            lines = []
            with self._dropped_lock:
                dropped, self._dropped = self._dropped, 0
            if dropped:  # the chain says where records were lost, and how many
                records.insert(0, canonical_json({"dropped": dropped, "event": "dropped"}))
            for record in records:
                if record is None:
                    continue
                lines.append(self.chain.line(record))
                if self.chain.since_checkpoint >= self.checkpoint_every:
                    lines.extend(self._checkpoint())
            overdue = wallclock.monotonic() - last_checkpoint >= self.checkpoint_seconds
            if (overdue and self.chain.since_checkpoint) or (done and self.chain.count):
                lines.extend(self._checkpoint(final=done))  # a log that never wrote stays empty
            if lines:
                if self.chain.since_checkpoint == 0:
                    last_checkpoint = wallclock.monotonic()
                self._emit(lines)
            elif overdue:
                last_checkpoint = wallclock.monotonic()
            if done:
                return
            self._rotate_if_large()

    def _checkpoint(self, final: bool = False) -> list[bytes]:
        line = self.chain.checkpoint(int(wallclock.time()), final)
        return [] if line is None else [line]

    def _emit(self, lines: list[bytes]) -> None:
        assert self._out is not None
        try:
            self._out.write(b"".join(line + b"\n" for line in lines))
            self._out.flush()
            if not self.healthy:
                self.healthy, self.problem = True, None
                print(f"{self.who}: the decision log is written again", file=sys.stderr)
        except (OSError, ValueError) as exc:
            self._failed(f"the decision log cannot be written: {exc}", len(lines))

    def _rotate_if_large(self) -> None:
        if self.rotate_bytes is None or self._out is None or self.path is None:
            return
        try:
            if os.fstat(self._out.fileno()).st_size < self.rotate_bytes:
                return
            self._emit(self._checkpoint())  # the part ends signed; the chain goes on in the next
            self._out.close()
            os.replace(self.path, f"{self.path}.{self.chain.id}-{self._first_in_file:012d}")
            self._first_in_file = self.chain.count
            self._out = self._open()
        except OSError as exc:
            self._failed(f"the decision log cannot be rotated: {exc}")

    def _failed(self, why: str, lines: int = 1) -> None:
        self.failures += lines
        if self.healthy:
            print(f"{self.who}: error: {why}", file=sys.stderr)
        self.healthy, self.problem = False, why
