"""The decision log's chain: how fast it is written and checked. Prints a table.

Run: .venv/bin/python bench/audit.py [--records 100000] [--repeat 3]

Writes N decision records (each ~500 bytes, the shape `oxdeai serve` logs) through
`DecisionLog` with an Ed25519 signer (a checkpoint every 1,000 records), timing from
the first write to the closing checkpoint on disk; then times `oxdeai audit verify`'s
check (`audit_log`) over the file with the key ring. Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import load_policy  # noqa: E402
from oxdeai.audit.check import audit_log  # noqa: E402
from oxdeai.audit.log import DecisionLog  # noqa: E402
from oxdeai.authz.keys import KeyRing, Signer  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402


def records(count: int) -> list[bytes]:
    engine = Engine(load_policy(ROOT / "examples" / "shop.oxp"))
    out = []
    for i in range(count):
        decision = engine.decide({"tool": "mail.send", "args": {"to": f"user{i}@example.com"}, "nonce": f"n{i}"},
                                 {"agent": {"id": f"agent-{i % 50}", "tier": "pro"}, "time": 1_764_000_000 + i})
        out.append(b'{"caller":"bot","decision":' + decision.to_json() + b',"event":"decision"}')
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    signer = Signer.generate()
    ring = KeyRing.of(signer)
    lines = records(args.records)
    written, checked, size = [], [], 0
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "decisions.jsonl"
            log = DecisionLog(str(path), capacity=len(lines) + 1, signer=signer)
            started = time.perf_counter()
            for line in lines:
                log.write(line)
            log.close()
            written.append(time.perf_counter() - started)
            size = path.stat().st_size
            started = time.perf_counter()
            report = audit_log([str(path)], ring)
            checked.append(time.perf_counter() - started)
            assert report.ok, report.problems[:3]
    n = args.records
    print(f"{'step':<28} {'records':>9} {'median s':>9} {'records/s':>11}")
    for name, times in (("write (chain + checkpoints)", written), ("audit verify", checked)):
        median = statistics.median(times)
        print(f"{name:<28} {n:>9,} {median:>9.3f} {n / median:>11,.0f}")
    print(f"\nfile: {size / 1e6:.1f} MB, {size // (n + n // 1000 + 1)} bytes per line on average")


if __name__ == "__main__":
    main()
