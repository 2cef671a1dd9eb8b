"""What the guard adds to a decision: a bare `decide` (+ `complete` of each ALLOW)
against a guarded call (decide, run a no-op tool, complete), sync and async, on the
in-memory store, over bench/decide.py's seven-rule policy and request mix. Prints a table.

Run: .venv/bin/python bench/guard.py [--n N] [--rounds R]
The same fixed call mix in every column; the figure is the median over R rounds of
the mean µs per call of each round.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.decide import SEVEN_RULES, seven_mix  # noqa: E402
from oxdeai import Engine, Guard, load_policy  # noqa: E402

Mix = list[tuple[dict[str, Any], dict[str, Any]]]


def mix(n: int) -> Mix:
    """bench/decide.py's seven-rule request mix (fixed seed)."""
    return seven_mix(random.Random(7), n)


def bare(n: int) -> float:
    engine = Engine(load_policy(SEVEN_RULES))
    calls = mix(n)
    start = time.perf_counter()
    for call, context in calls:
        decision = engine.decide(call, context)
        if decision.allowed:
            engine.complete(decision.decision_id, "ok", context["time"])
    return (time.perf_counter() - start) / n * 1e6


def guarded(n: int) -> float:
    guard = Guard(load_policy(SEVEN_RULES))
    calls = mix(n)

    def tool(**args: Any) -> None:
        return None

    start = time.perf_counter()
    for call, context in calls:
        with guard.bind(agent=context["agent"], time=context["time"]):
            guard.call(call["tool"], call["args"], tool)
    return (time.perf_counter() - start) / n * 1e6


def guarded_async(n: int) -> float:
    guard = Guard(load_policy(SEVEN_RULES))
    calls = mix(n)

    async def tool(**args: Any) -> None:
        return None

    async def run() -> float:
        start = time.perf_counter()
        for call, context in calls:
            with guard.bind(agent=context["agent"], time=context["time"]):
                await guard.acall(call["tool"], call["args"], tool)
        return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    columns = {"decide + complete (bare)": bare, "guard.call (sync)": guarded, "guard.acall (async)": guarded_async}
    figures = {name: statistics.median(fn(options.n) for _ in range(options.rounds)) for name, fn in columns.items()}
    base = figures["decide + complete (bare)"]
    print(f"{'path':<28} {'µs/call':>9} {'over bare':>10}")
    for name, value in figures.items():
        print(f"{name:<28} {value:>9.2f} {value - base:>+9.2f}")


if __name__ == "__main__":
    main()
