"""`verify`'s answers kept across runs, so an unchanged file re-verifies at once (pre-commit
runs on every commit).

Contract: `lookup(text, budget, timeout)` returns the results a previous `store` kept
for the same policy text, verified by the same oxdeai code (a digest of every source
file of the language, engine and verifier and the grammar) with the same z3 release,
budget and timeout — or None. The answer under a deterministic budget is a function of
exactly those inputs, so a kept answer is the one a new run would give. Results a
wall-clock backstop decided (they depend on the machine) are never kept. Entries live
in a private directory (0700) under the user's cache (`$XDG_CACHE_HOME/oxdeai/verify`,
else `~/.cache/oxdeai/verify`); an entry that does not read back as results is a miss,
never an answer. This module does not import z3: a hit loads no solver.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from oxdeai.cachedir import private_dir
from oxdeai.dsl import ast as A
from oxdeai.verifier.results import WALL_CLOCK, Result

FORMAT = "oxdeai-verify-cache-1"
PACKAGE = Path(__file__).resolve().parent.parent


@cache
def code_digest() -> str:
    """What the answer depends on besides the input: our code and the solver's release."""
    digest = hashlib.sha256(FORMAT.encode())
    for sub in ("dsl", "runtime", "verifier", "grammar"):
        for path in sorted((PACKAGE / sub).rglob("*")):
            if path.suffix in (".py", ".lark"):
                digest.update(str(path.relative_to(PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        digest.update(metadata.version("z3-solver").encode())
    except metadata.PackageNotFoundError:
        digest.update(b"z3-unknown")
    return digest.hexdigest()


def key(text: str, budget: int, timeout: float) -> str:
    material = json.dumps([code_digest(), hashlib.sha256(text.encode("utf-8")).hexdigest(), budget, timeout])
    return hashlib.sha256(material.encode()).hexdigest()


def lookup(text: str, budget: int, timeout: float) -> list[Result] | None:
    folder = private_dir("verify")
    if folder is None:
        return None
    path = folder / f"{key(text, budget, timeout)}.json"
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept.get("format") != FORMAT:
            return None
        return [_result(r) for r in kept["results"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def store(text: str, budget: int, timeout: float, results: list[Result]) -> None:
    """Keep the results (never when a wall clock decided one); a cache that cannot be
    written is no error."""
    if any(r.reason and WALL_CLOCK in r.reason for r in results):
        return
    folder = private_dir("verify")
    if folder is None:
        return  # not ours alone: keep nothing where others could plant answers
    try:
        path = folder / f"{key(text, budget, timeout)}.json"
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"format": FORMAT, "results": [_kept(r) for r in results]}), encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        return


def _kept(r: Result) -> dict[str, Any]:
    span = r.span
    return {"property": r.property, "kind": r.kind, "status": r.status, "counterexample": r.counterexample,
            "reason": r.reason, "time_ms": r.time_ms, "detail": r.detail,
            "span": [span.line, span.column, span.end_line, span.end_column]}


def _result(kept: dict[str, Any]) -> Result:
    line, column, end_line, end_column = (int(v) for v in kept["span"])
    status = kept["status"]
    if status not in ("proved", "violated", "unknown") or not isinstance(kept["property"], str):
        raise ValueError("not a kept result")
    return Result(kept["property"], str(kept["kind"]), status, A.Span(line, column, end_line, end_column),
                  kept["counterexample"], kept["reason"], int(kept["time_ms"]), kept["detail"])
