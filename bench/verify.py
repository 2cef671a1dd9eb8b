"""Wall time of `verify` on the examples and on generated policies, and of `diff`. Prints a table.

Run: .venv/bin/python bench/verify.py [--sizes 20,200,2000]
Generated policies have limits on every tool (so generated invariants) and assertions;
each size is verified with those alone, then with `check no_conflicts` and `check
coverage` added. The last lines time `oxdeai verify` end to end (process start
included) on the 200-rule file: once afresh, once answered from the cache as a
pre-commit hook re-run on an unchanged file is.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import generated_policy  # noqa: E402
from oxdeai import load_policy  # noqa: E402
from oxdeai.verifier.diff import diff_policies  # noqa: E402
from oxdeai.verifier.properties import verify_policy  # noqa: E402


def with_properties(text: str, tools: int = 50,
                    checks: tuple[str, ...] = ("no_conflicts", "coverage", "no_dead_rules")) -> str:
    extra = [f"assert capped{t}: never allow svc{t}.call when args.amount > 1_000_000" for t in range(0, tools, 5)]
    return text + "\n".join(extra + [f"check {c}" for c in checks]) + "\n"


def timed(fn: object, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="20,200,2000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'policy':<40} {'properties':>10} {'proved':>7} {'violated':>9} {'unknown':>8} {'median s':>9}")
    rows = [(p.name, p.read_text()) for p in sorted((ROOT / "examples").glob("*.oxp"))]
    for n in (int(s) for s in args.sizes.split(",")):
        rows.append((f"{n} rules: invariants, assertions", with_properties(generated_policy(n, stateful=True),
                                                                            checks=())))
        rows.append((f"{n} rules: + no_conflicts, coverage",
                     with_properties(generated_policy(n, stateful=True), checks=("no_conflicts", "coverage"))))
    for name, text in rows:
        policy = load_policy(text)
        repeat = args.repeat if len(text) < 100_000 else 1
        seconds, results = timed(lambda p=policy: verify_policy(p), repeat)
        statuses = [r.status for r in results]  # type: ignore[attr-defined]
        print(f"{name:<40} {len(statuses):>10} {statuses.count('proved'):>7} {statuses.count('violated'):>9} "
              f"{statuses.count('unknown'):>8} {seconds:>9.2f}")
    old_text = with_properties(generated_policy(200, stateful=True))
    # one allow rule widened to every call of its tool: the diff must find newly allowed requests
    new_text = re.sub(r"(?m)^allow rule1 on svc1\.call when .*$", "allow rule1 on svc1.call", old_text)
    assert new_text != old_text
    old, new = load_policy(old_text), load_policy(new_text)
    seconds, report = timed(lambda: diff_policies(old, new), args.repeat)
    print(f"\ndiff, 200 rules, one rule changed: {seconds:.2f} s median; newly allowed tools: "
          f"{[w['tool'] for w in report.newly_allowed]}")  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "generated200.oxp"
        path.write_text(with_properties(generated_policy(200, stateful=True), checks=("no_conflicts", "coverage")))
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        for what in ("afresh", "from the cache"):
            start = time.perf_counter()
            subprocess.run([str(Path(sys.executable).with_name("oxdeai")), "verify", str(path)], env=env,
                           capture_output=True, check=False)
            print(f"oxdeai verify, 200 rules with checks, {what}: {time.perf_counter() - start:.2f} s wall")


if __name__ == "__main__":
    main()
