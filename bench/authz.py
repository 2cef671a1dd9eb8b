"""The cost of a signed authorization per decision: issuing one and verifying one. Prints a table.

Run: .venv/bin/python bench/authz.py [--n N]
Issuing is `oxdeai.authz.tokens.issue` (canonical JSON of the call, SHA-256, Ed25519
signature); verifying is `oxdeai.pep.verify` with an in-memory replay store. Medians
of five runs of N each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import Engine, load_policy  # noqa: E402
from oxdeai.authz.keys import KeyRing, Signer  # noqa: E402
from oxdeai.authz.replay import MemoryReplay  # noqa: E402
from oxdeai.authz.tokens import issue  # noqa: E402
from oxdeai.pep import verify  # noqa: E402

T0 = 1_764_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    engine = Engine(load_policy(ROOT / "examples" / "shop.oxp"))
    call = {"tool": "pay.slow", "args": {"amount": 5}, "nonce": "n"}
    context = {"agent": {"id": "a1", "tier": "pro"}, "time": T0}
    decision = engine.decide(call, context)
    signer = Signer.generate()
    ring = KeyRing.of(signer)
    rows = []
    for what in ("HS256 (one host)", "EdDSA (Ed25519)"):
        s = Signer.hmac(b"s" * 32, "h") if what.startswith("HS") else signer
        keys = KeyRing({"h": (b"s" * 32, "HS256")}) if what.startswith("HS") else ring
        issue_runs, verify_runs = [], []
        for _ in range(5):
            started = time.perf_counter()
            tokens = [issue(decision, call, context, signer=s, audience="x", now=T0) for _ in range(n)]
            issue_runs.append((time.perf_counter() - started) / n * 1e6)
            store = MemoryReplay()
            started = time.perf_counter()
            for token in tokens:
                assert verify(token, call, context, audience="x", keys=keys, replay=store, now=T0)
            verify_runs.append((time.perf_counter() - started) / n * 1e6)
        rows.append((what, statistics.median(issue_runs), statistics.median(verify_runs)))
    print(f"| signature | issue µs | verify µs |  (median of 5 x {n})")
    print("|---|---|---|")
    for what, issued, verified in rows:
        print(f"| {what} | {issued:.1f} | {verified:.1f} |")


if __name__ == "__main__":
    main()
