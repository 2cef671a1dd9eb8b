"""Decision latency of the engine with the in-memory store. Prints a table.

Run: .venv/bin/python bench/decide.py [--n N]
Fixed seed and fixed request mixes: two runs decide the same requests.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import generated_policy  # noqa: E402
from oxdeai import load_policy  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402

SEVEN_RULES = """policy seven
agent { id: string, role: "support" | "finance" }
tool crm.read(customer: string)
tool crm.refund(customer: string, amount: int[1..10_000])
tool email.send(to: string, subject: string)
allow read on crm.read
allow small_refund on crm.refund when args.amount <= 100
allow finance_refund on crm.refund when agent.role == "finance" and args.amount <= 1_000
deny big_refund on crm.refund when args.amount > 5_000 because "needs a human"
allow customer_email on email.send when args.to endswith "@customers.example.com"
deny other_email on email.send when not (args.to endswith "@customers.example.com")
deny blocked on * when agent.id == "blocked"
"""

T0 = 1_764_000_000


def seven_mix(rng: random.Random, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for i in range(n):
        agent = {"id": f"a{rng.randint(0, 20)}", "role": rng.choice(["support", "finance"])}
        kind = rng.randint(0, 2)
        if kind == 0:
            call = {"tool": "crm.read", "args": {"customer": f"c{i % 50}"}}
        elif kind == 1:
            call = {"tool": "crm.refund", "args": {"customer": "c1", "amount": rng.randint(1, 10_000)}}
        else:
            to = rng.choice(["ann@customers.example.com", "eve@evil.example"])
            call = {"tool": "email.send", "args": {"to": to, "subject": "hi"}}
        out.append((call, {"agent": agent, "time": T0 + i}))
    return out


def payments_mix(rng: random.Random, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for i in range(n):
        agent = {"id": f"agent-{rng.randint(0, 999)}", "role": rng.choice(["support", "finance"]),
                 "depth": rng.randint(0, 4)}
        kind = rng.randint(0, 2)
        if kind == 0:
            call: dict[str, Any] = {"tool": "ledger.read", "args": {"account": "acct_ops"}}
        elif kind == 1:
            call = {"tool": "payments.transfer",
                    "args": {"amount": rng.randint(1, 9_000), "currency": "USD",
                             "to": rng.choice(["acct_ops", "acct_payroll", "acct_x"])},
                    "idempotency_key": f"k{i}"}
        else:
            call = {"tool": "payments.refund", "args": {"charge_id": "ch_1", "amount": rng.randint(1, 900)},
                    "idempotency_key": f"k{i}"}
        call["nonce"] = f"n{i}"
        out.append((call, {"agent": agent, "time": T0 + i}))
    return out


def generated_mix(rng: random.Random, n: int, stateful: bool) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for i in range(n):
        call: dict[str, Any] = {"tool": f"svc{rng.randint(0, 49)}.call",
                                "args": {"amount": rng.randint(0, 1_000_000), "target": f"acct_{rng.randint(0, 99)}",
                                         "mode": rng.choice(["r", "w"])}}
        if stateful:
            call["nonce"] = f"n{i}"
            call["idempotency_key"] = f"k{i}"
        agent = {"id": f"a{rng.randint(0, 99)}", "role": rng.choice(["a", "b"]), "depth": rng.randint(0, 8)}
        out.append((call, {"agent": agent, "time": T0 + i}))
    return out


def measure(policy_text: str, requests: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, float]:
    engine = Engine(load_policy(policy_text), clock=lambda: T0)
    for call, context in requests[: len(requests) // 10]:  # warm up
        engine.decide(call, context)
    engine = Engine(load_policy(policy_text), clock=lambda: T0)
    samples = []
    allow_samples = []
    allowed = 0
    clock = time.perf_counter_ns
    for call, context in requests:
        start = clock()
        decision = engine.decide(call, context)
        elapsed = clock() - start
        samples.append(elapsed)
        if decision.allowed:
            allowed += 1
            allow_samples.append(elapsed)
    samples.sort()
    micro = [s / 1000 for s in samples]
    return {
        "per_s": len(samples) / (sum(samples) / 1e9),
        "median": statistics.median(micro),
        "p90": micro[int(len(micro) * 0.90)],
        "p99": micro[int(len(micro) * 0.99)],
        "allow": allowed / len(samples),
        "allow_median": statistics.median(allow_samples) / 1000 if allow_samples else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    payments = (ROOT / "tests" / "data" / "acceptance" / "01-payments" / "policy.oxp").read_text()
    cases = [
        ("(a) 7 rules, no state", SEVEN_RULES, seven_mix(random.Random(1), n)),
        ("(b) payments (limits, nonce, idempotency)", payments, payments_mix(random.Random(2), n)),
    ]
    for rules in (20, 200, 2_000):
        cases.append((f"(c) {rules} rules / 50 tools", generated_policy(rules),
                      generated_mix(random.Random(3), n, stateful=False)))
    for rules in (20, 200, 2_000):
        cases.append((f"(d) {rules} rules / 50 tools + state", generated_policy(rules, stateful=True),
                      generated_mix(random.Random(4), n, stateful=True)))
    print(f"{'case':<44} {'decisions/s':>12} {'median µs':>10} {'p90 µs':>8} {'p99 µs':>8} {'allowed':>8} "
          f"{'ALLOW median µs':>16}")
    for name, text, requests in cases:
        r = measure(text, requests)
        print(f"{name:<44} {r['per_s']:>12,.0f} {r['median']:>10.1f} {r['p90']:>8.1f} {r['p99']:>8.1f} "
              f"{r['allow']:>8.0%} {r['allow_median']:>16.1f}")


if __name__ == "__main__":
    main()
