"""`matches` on the longest argument a request can carry (65,536 code points), against the
hardest patterns `check` accepts. Prints a table; the bar is 5 ms per decision, the
first one on a fresh engine included.

Run: .venv/bin/python bench/regex.py [--repeat 5]

Each row is one pattern and one kind of subject, decided through the engine (schema,
rules, the RE2 match) in a policy `allow r on t when args.s matches P`. The patterns are
the classic backtracking traps and the largest automata `check` accepts (2,048 states:
`[ab]*a[ab]{10}` remembers the last 11 characters; 100,000 positions over all states).
The subjects include random strings over the pattern's own letters, which visit a new
automaton state at almost every character: the case that made RE2 fall back to its NFA
simulation (half a second per decision) before `check` bounded the automaton. `first ms`
is the first decision on a fresh engine, while RE2 builds the states it visits; `median
ms` is over --repeat fresh random subjects of that kind after it. The patterns `check`
now refuses are listed at the end with its reason.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import load_policy  # noqa: E402
from oxdeai.dsl.policy import compile_source  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402

N = 65_536
ACCEPTED = [
    "(a+)+", "(a|a)*", "(a*)*b", "(.*)*b", "(a|aa)+", r"(\\w+\\d?)+", ".*.*.*=.*", "([a-z]+)*@", "(.*a){20}",
    "(a{1,10}){1,10}b", "(.{10}){100}", "[ab]*a[ab]{10}", ".*a.{10}", "(.*\\d.{8}){2}", "(.*(a|b){10}){5}c",
    "((a|b|c|d|e|f|g|h|i|j)*x){20}", "(.*a.*b.*c){30}",
]
REFUSED = ["[ab]*a[ab]{100}", "(.*\\d.{50}){19}", "(.*a.{99}b){10}", "(a{1,10}){1,100}b", "(.*(a|b){10}){50}c"]
UNICODE = "aé中😀\u0800\U00010000\u07ff\U0010fffd"


FIXED = {
    "a*65535+!": "a" * (N - 1) + "!",
    "(a*64+=)*": ("a" * 64 + "=") * (N // 65),
    "digits": ("0123456789abcdefghij" * (N // 20 + 1))[:N],
}
RANDOM = {"random ab": "ab", "random abc0": "abc0", "random utf-8": UNICODE}


def subject(kind: str, rng: random.Random) -> str:
    """A fixed subject, or a fresh random one over the kind's letters."""
    return FIXED[kind] if kind in FIXED else "".join(rng.choice(RANDOM[kind]) for _ in range(N))


def policy_for(pattern: str) -> str:
    return f'policy r\ntool t(s: string)\nallow r on t when args.s matches "{pattern}"\n'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    rng = random.Random(2026)
    kinds = [*FIXED, *RANDOM]
    print(f"{'pattern':<32} {'subject':<13} {'first ms':>9} {'median ms':>10} {'max ms':>8}")
    worst = (0.0, "", "")
    for pattern in ACCEPTED:
        engine = Engine(load_policy(policy_for(pattern)))
        for kind in kinds:
            times = []
            for _ in range(repeat + 1):
                call = {"tool": "t", "args": {"s": subject(kind, rng)}}
                started = time.perf_counter()
                engine.decide(call, {"agent": {}, "time": 0})
                times.append((time.perf_counter() - started) * 1000)
            first, rest = times[0], times[1:]
            print(f"{pattern:<32} {kind:<13} {first:>9.3f} {statistics.median(rest):>10.3f} {max(times):>8.3f}")
            worst = max(worst, (max(times), pattern, kind))
    print(f"\nslowest decision: {worst[0]:.3f} ms ({worst[1]} on {worst[2]}); the bar is 5 ms")
    print("\nrefused by check:")
    for pattern in REFUSED:
        _, diagnostics = compile_source(policy_for(pattern))
        print(f"  {pattern:<30} {diagnostics[0].code} {diagnostics[0].message[:90]}...")


if __name__ == "__main__":
    main()
