"""Shared test helpers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from oxdeai.cli import main

# The suite keeps its caches (the grammar's analysis, verify's answers) apart from the
# user's, so a test always sees what this run computed: set before any test runs, and
# inherited by every command a test starts.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="oxdeai-test-cache-")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ACCEPTANCE = DATA / "acceptance"
EXAMPLES = ROOT / "examples"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def json_lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def run_trace(engine: Any, trace: list[dict[str, Any]]) -> list[Any]:
    """Decisions and completions through one engine, as `oxdeai eval --trace` runs them:
    a `complete` line names an earlier request line by its index."""
    out: list[Any] = []
    for line in trace:
        if "complete" in line:
            out.append(engine.complete(out[line["complete"]].decision_id, line["outcome"], line["time"]))
        else:
            call = {k: v for k, v in line.items() if k not in ("agent", "time")}
            out.append(engine.decide(call, {"agent": line.get("agent", {}), "time": line["time"]}))
    return out
