"""What the guard adds to a decision: a bare `decide` against a guarded call (decide,
run a no-op tool, complete), sync and async, on the in-memory store. Prints a table.

Run: .venv/bin/python bench/guard.py [--n N] [--rounds R]
The same fixed call mix in every column; the figure is the median over R rounds of
the mean µs per call of each round.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import Guard, load_policy  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402

POLICY = """policy bench
agent { id: string, role: "support" | "finance" }
tool crm.read(customer: string)
tool crm.refund(customer: string, amount: int[1..10_000])
allow read on crm.read
allow small_refund on crm.refund when args.amount <= 100
allow finance_refund on crm.refund when agent.role == "finance" and args.amount <= 1_000
deny big_refund on crm.refund when args.amount > 5_000 because "needs a human"
"""
AGENT = {"id": "a1", "role": "finance"}
T0 = 1_764_000_000


def calls(n: int) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(n):
        if i % 2:
            out.append(("crm.read", {"customer": f"c{i % 50}"}))
        else:
            out.append(("crm.refund", {"customer": "c1", "amount": (i * 37) % 10_000 + 1}))
    return out


def bare(n: int) -> float:
    engine = Engine(load_policy(POLICY))
    mix = [({"tool": t, "args": a}, {"agent": AGENT, "time": T0}) for t, a in calls(n)]
    start = time.perf_counter()
    for call, context in mix:
        decision = engine.decide(call, context)
        if decision.allowed:
            engine.complete(decision.decision_id, "ok", T0)
    return (time.perf_counter() - start) / n * 1e6


def guarded(n: int) -> float:
    guard = Guard(load_policy(POLICY), agent=AGENT)
    mix = calls(n)

    def tool(**args: Any) -> None:
        return None

    start = time.perf_counter()
    with guard.bind(time=T0):
        for name, args in mix:
            guard.call(name, args, tool)
    return (time.perf_counter() - start) / n * 1e6


def guarded_async(n: int) -> float:
    guard = Guard(load_policy(POLICY), agent=AGENT)
    mix = calls(n)

    async def tool(**args: Any) -> None:
        return None

    async def run() -> float:
        start = time.perf_counter()
        with guard.bind(time=T0):
            for name, args in mix:
                await guard.acall(name, args, tool)
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
