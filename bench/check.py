"""Time `oxdeai check` (parse + check + desugar) on generated policies. Prints a table.

Run: .venv/bin/python bench/check.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import generated_policy  # noqa: E402
from oxdeai.dsl.policy import compile_source  # noqa: E402


def main() -> None:
    print(f"{'rules':>6} {'bytes':>9} {'median ms':>10} {'min ms':>8}")
    for rules in (20, 200, 2_000, 10_000):
        text = generated_policy(rules, stateful=True)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            policy, diagnostics = compile_source(text)
            times.append((time.perf_counter() - start) * 1000)
            assert policy is not None, [d.message for d in diagnostics][:3]
        print(f"{rules:>6} {len(text):>9} {statistics.median(times):>10.1f} {min(times):>8.1f}")


if __name__ == "__main__":
    main()
