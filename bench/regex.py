"""`matches` on the longest argument a request can carry (65,536 code points), against the
hardest patterns `check` accepts. Prints a table; the bar is 5 ms per decision.

Run: .venv/bin/python bench/regex.py [--repeat 5]

Each row is one pattern: `check` must accept it, and every subject is decided through
the engine (schema, rules, the RE2 match) in a policy `allow r on t when args.s matches P`.
The patterns are the classic backtracking traps, the nested repetitions RE2 builds
largest (counts multiplying to the 1000 the dialect allows), and ones that blow up a
DFA (a character 100 places from the end), so RE2 falls back to its NFA simulation.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import load_policy  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402

N = 65_536
PATTERNS = [
    "(a+)+", "(a|a)*", "(a*)*b", "(.*)*b", "(a|aa)+", r"(\\w+\\d?)+", ".*.*.*=.*", "([a-z]+)*@", "(.*a){20}",
    "(a{1,10}){1,100}b", "(.{10}){100}", "(.*a.{99}b){10}", "[ab]*a[ab]{100}", "(.*(a|b){10}){50}c",
    "((a|b|c|d|e|f|g|h|i|j)*x){20}", "(.*\\d.{50}){19}",
]
SUBJECTS = {
    "a*65535+!": "a" * (N - 1) + "!",
    "(a*64+=)*": ("a" * 64 + "=") * (N // 65),
    "ab mix": ("ab" * (N // 2))[:N],
    "digits": ("0123456789abcdefghij" * (N // 20 + 1))[:N],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    print(f"{'pattern':<32} {'subject':<12} {'median ms':>10} {'max ms':>8}  decision")
    worst = (0.0, "", "")
    for pattern in PATTERNS:
        policy = load_policy(f'policy r\ntool t(s: string)\nallow r on t when args.s matches "{pattern}"\n')
        engine = Engine(policy)
        for name, subject in SUBJECTS.items():
            call = {"tool": "t", "args": {"s": subject}}
            times, decision = [], None
            for _ in range(repeat):
                started = time.perf_counter()
                decision = engine.decide(call, {"agent": {}, "time": 0})
                times.append((time.perf_counter() - started) * 1000)
            median = statistics.median(times)
            assert decision is not None
            print(f"{pattern:<32} {name:<12} {median:>10.3f} {max(times):>8.3f}  {decision.decision}")
            worst = max(worst, (median, pattern, name))
    print(f"\nworst median: {worst[0]:.3f} ms ({worst[1]} on {worst[2]}); the bar is 5 ms")


if __name__ == "__main__":
    main()
