"""`oxdeai eval FILE --request JSON|@file [--state @file]` and `--trace @file.jsonl`.

Prints one canonical JSON decision per request (and one line per `complete`).
Exit 0 whatever the decision; 2 for malformed input; 1 if the policy has errors.
"""

from __future__ import annotations

import sys
import time as wallclock
from typing import Any

import click

from oxdeai.cli.common import EXIT_OK, STORE_HELP, fail_usage, load_for_command, parse_json, read_argument
from oxdeai.dsl.types import HOST_OUTCOMES
from oxdeai.runtime.engine import CompletionError, Engine
from oxdeai.runtime.models import canonical_json
from oxdeai.runtime.schema import split_request
from oxdeai.runtime.state_files import StateFileError
from oxdeai.runtime.store import StoreError
from oxdeai.runtime.store_urls import open_store

_BLANK = object()  # a blank trace line: no decision (a JSON `null` line is a request, and is denied)


def trace_lines(text: str) -> list[str]:
    """A trace's lines: split on `\n` (a `\r` before it is dropped), never on the other
    characters Python counts as line breaks, which may sit inside a JSON string."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class _TraceClock:
    """The CLI's engine clock: the latest time the trace has shown, else the wall clock."""

    def __init__(self) -> None:
        self.now: int | None = None

    def __call__(self) -> int:
        return self.now if self.now is not None else int(wallclock.time())

    def see(self, t: Any) -> None:
        if type(t) is int:
            self.now = t if self.now is None else max(self.now, t)


@click.command(name="eval")
@click.argument("file")
@click.option("--request", "request_arg", help="The request JSON, or @file.")
@click.option("--trace", "trace_arg", help="A JSON-lines trace of requests and completions, as @file.")
@click.option("--state", "state_arg", help="A state file (JSON), or @file.")
@click.option("--store", "store_url", default="memory://", show_default=True,
              help=STORE_HELP)
def eval_command(file: str, request_arg: str | None, trace_arg: str | None, state_arg: str | None,
                 store_url: str) -> None:
    """Decide one request, or run a trace against one engine."""
    if (request_arg is None) == (trace_arg is None):
        fail_usage("give exactly one of --request or --trace")
    policy = load_for_command(file)
    clock = _TraceClock()
    try:
        store = open_store(store_url, policy)
    except StoreError as exc:
        fail_usage(str(exc))
    engine = Engine(policy, store=store, clock=clock)
    if trace_arg is not None:
        lines = trace_lines(read_argument(trace_arg, "trace"))
        items = [parse_json(line, f"trace line {i}") if line.strip() else _BLANK for i, line in enumerate(lines)]
    else:
        items = [parse_json(read_argument(request_arg or "", "request"), "the request")]
    first_time = next((i.get("time") for i in items if isinstance(i, dict) and type(i.get("time")) is int), None)
    if state_arg is not None:
        state = parse_json(read_argument(state_arg, "state"), "the state file")
        try:
            engine.import_state(state, first_time)
        except StateFileError as exc:
            fail_usage(f"the state file does not fit the policy: {exc}")
        except StoreError as exc:
            fail_usage(f"the state store refused the state file: {exc}")
    _check_trace(items)
    decisions: dict[int, Any] = {}
    out = sys.stdout.buffer
    for index, item in enumerate(items):
        if item is _BLANK:
            continue
        if isinstance(item, dict) and "complete" in item:
            target = decisions[item["complete"]]
            when = item.get("time")
            clock.see(when)
            try:
                effects = engine.complete(target.decision_id, item.get("outcome", "ok"), when)
                line: dict[str, Any] = {"complete": item["complete"], "outcome": item.get("outcome", "ok"),
                                        "effects": [{"state": s, "key": k or None, "before": b, "after": a}
                                                    for s, k, b, a in effects]}
            except CompletionError as exc:
                line = {"complete": item["complete"], "error": str(exc)}
            out.write(canonical_json(line) + b"\n")
            continue
        call, context = split_request(item)
        if isinstance(context, dict):
            clock.see(context.get("time"))
        decision = engine.decide(call, context)
        decisions[index] = decision
        out.write(decision.to_json() + b"\n")
    out.flush()
    sys.exit(EXIT_OK)


def _check_trace(items: list[Any]) -> None:
    for index, item in enumerate(items):
        if not (isinstance(item, dict) and "complete" in item):
            continue
        target = item["complete"]
        if type(target) is not int or not 0 <= target < index or not isinstance(items[target], dict) \
                or "complete" in items[target]:
            fail_usage(f"trace line {index}: `complete` must name an earlier request line (0-based)")
        if item.get("outcome", "ok") not in HOST_OUTCOMES:
            fail_usage(f"trace line {index}: `outcome` is one of " + ", ".join(f'"{o}"' for o in HOST_OUTCOMES))
        if "time" in item and type(item["time"]) is not int:
            fail_usage(f"trace line {index}: `time` must be an integer")
