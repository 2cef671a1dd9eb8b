"""Memory of a long-running engine on the in-memory store. Prints a table.

Run: .venv/bin/python bench/memory.py [--n 1000000] [--every 100000]

One engine decides N calls of the payments example (nonces, idempotency keys, daily
budgets, a concurrency cap with a lease) and completes every allowed transfer, as a
host does, while host time advances 2.6 s per decision (a million decisions span 30
days). The store forgets what can no longer matter — nonces and idempotency records
past their window, finished calls past the 7-day completion horizon, windowed entries
two windows old — so the records it holds and the resident memory level off once the
horizon has passed, instead of growing with every decision.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import load_policy  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402
from oxdeai.runtime.store import MemoryStore  # noqa: E402

T0 = 1_764_000_000
STEP_MS = 2_600  # host time per decision, in milliseconds


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def records(store: MemoryStore) -> int:
    return store.size()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    args = parser.parse_args()
    policy = load_policy(ROOT / "examples" / "payments.oxp")
    engine = Engine(policy)
    store = engine.store
    assert isinstance(store, MemoryStore)
    agents = [{"id": f"agent-{i}", "role": "finance", "depth": 1} for i in range(50)]
    print(f"{'decisions':>10} {'host days':>9} {'records':>9} {'RSS MB':>8} {'allowed':>8} {'s':>6}")
    started, allowed = time.perf_counter(), 0
    for i in range(1, args.n + 1):
        now = T0 + i * STEP_MS // 1000
        agent = agents[i % len(agents)]
        if i % 3:
            call = {"tool": "payments.transfer", "args": {"amount": 1 + i % 4_000, "currency": "USD",
                                                          "to": "acct_ops"},
                    "nonce": f"n{i}", "idempotency_key": f"k{i}"}
        else:
            call = {"tool": "ledger.read", "args": {"account": f"acct_{i % 97}"}, "nonce": f"n{i}"}
        decision = engine.decide(call, {"agent": agent, "time": now})
        if decision.allowed:
            allowed += 1
            if call["tool"] == "payments.transfer":
                engine.complete(decision.decision_id, "ok" if i % 7 else "failed", now)
        if i % args.every == 0:
            print(f"{i:>10,} {(now - T0) / 86_400:>9.1f} {records(store):>9,} {rss_mb():>8.1f} "
                  f"{allowed / i:>7.0%} {time.perf_counter() - started:>6.0f}")


if __name__ == "__main__":
    main()
