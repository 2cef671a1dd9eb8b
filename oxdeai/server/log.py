"""The decision log: every decision and completion, one canonical JSON line each.

Contract: `DecisionLog.write(line)` never blocks and never raises: lines go to a
bounded queue that one writer thread drains to the file (or stdout), flushing after
each batch. A line that cannot be queued (the writer has fallen `capacity` lines
behind) or written (a full disk, a closed pipe) is counted in `failures`, reported
once per episode on stderr, and `healthy` is False until a later write succeeds —
`/readyz` says so. A line holds the request's hash, never its arguments (the
language has no way to mark an argument secret, so none is logged).
"""

from __future__ import annotations

import queue
import sys
import threading
from typing import BinaryIO

from oxdeai.runtime.models import canonical_json


class DecisionLog:
    def __init__(self, path: str | None, capacity: int = 100_000) -> None:
        """`path`: a file to append to; "-" for stdout; None for no log."""
        self.path = path
        self.failures = 0
        self.healthy = True
        self.problem: str | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(capacity)
        self._out: BinaryIO | None = None
        self._thread: threading.Thread | None = None
        if path is not None:
            # unbuffered: one write(2) per batch, so workers appending to one file never split a line
            self._out = sys.stdout.buffer if path == "-" else open(path, "ab", buffering=0)  # noqa: SIM115
            self._thread = threading.Thread(target=self._drain, name="oxdeai-decision-log", daemon=True)
            self._thread.start()

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def write(self, line: bytes) -> None:
        if self._out is None:
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._failed("the decision log's writer is behind; lines are being dropped")

    def event(self, **fields: object) -> None:
        """A line from plain fields (canonical JSON)."""
        if self._out is not None:
            self.write(canonical_json(fields))

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
        if self._out is not None and self.path != "-":
            self._out.close()

    def _drain(self) -> None:
        assert self._out is not None
        while True:
            lines = [self._queue.get()]
            while len(lines) < 1000:
                try:
                    lines.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = None in lines
            batch = [line for line in lines if line is not None]
            try:
                self._out.write(b"".join(line + b"\n" for line in batch))
                self._out.flush()
                if not self.healthy:
                    self.healthy, self.problem = True, None
                    print("oxdeai serve: the decision log is written again", file=sys.stderr)
            except (OSError, ValueError) as exc:
                self._failed(f"the decision log cannot be written: {exc}", len(batch))
            if done:
                return

    def _failed(self, why: str, lines: int = 1) -> None:
        self.failures += lines
        if self.healthy:
            print(f"oxdeai serve: error: {why}", file=sys.stderr)
        self.healthy, self.problem = False, why
