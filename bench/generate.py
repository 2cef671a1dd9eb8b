"""Deterministic generated policies for the benchmarks (fixed seed, no wall clock)."""

from __future__ import annotations

import random


def generated_policy(rules: int, tools: int = 50, stateful: bool = False, seed: int = 7) -> str:
    """`rules` allow/deny rules spread over `tools` tools; with `stateful`, limits, replay and idempotency."""
    rng = random.Random(seed)
    lines = ['policy generated version "1"', 'agent { id: string, role: "a" | "b", depth: int[0..8] }']
    for t in range(tools):
        lines.append(f'tool svc{t}.call(amount: int[0..1_000_000], target: string, mode: "r" | "w")')
    for r in range(rules):
        t = r % tools
        kind = "deny" if r % 5 == 4 else "allow"
        bound = rng.randint(10, 900_000)
        cond = rng.choice([
            f"args.amount <= {bound}",
            f'args.amount > {bound} and agent.role == "a"',
            f'args.target startswith "acct_{rng.randint(0, 99)}"',
            f'args.mode == "r" or agent.depth < {rng.randint(1, 8)}',
            f"args.amount % {rng.randint(2, 9)} == 0 and hour(time) >= {rng.randint(0, 23)}",
        ])
        lines.append(f"{kind} rule{r} on svc{t}.call when {cond}")
    if stateful:
        for t in range(tools):
            lines.append(f"limit spend{t} on svc{t}.call: sum args.amount per agent.id every 1d <= 10_000_000_000")
            lines.append(f"limit rate{t} on svc{t}.call: count per agent.id every 1m <= 1_000_000_000")
        lines.append("require nonce within 10m")
        lines.append("idempotent on * within 1h")
    return "\n".join(lines) + "\n"
