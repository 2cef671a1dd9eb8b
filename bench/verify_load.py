"""`verify` gives the same answer on an idle machine and on a busy one. Prints a table.

Run: .venv/bin/python bench/verify_load.py [--burners 2]

Runs `oxdeai verify --format json` on every bundled example and acceptance policy, once
with the machine idle and once while `--burners` processes spin on every core, and
compares the status of every property. The solver's limit is its deterministic budget
(Z3 rlimit), not wall-clock time, so the two runs must agree; the wall times differ.
Exits 1 if any status differs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OXDEAI = Path(sys.executable).with_name("oxdeai")


def policies() -> list[Path]:
    acceptance = sorted(p for p in (ROOT / "tests" / "data" / "acceptance").rglob("*.oxp")
                        if "02-syntax" not in str(p) and "03-type" not in str(p))
    return sorted((ROOT / "examples").glob("*.oxp")) + acceptance


def verify_all() -> tuple[dict[str, str], float]:
    statuses: dict[str, str] = {}
    started = time.perf_counter()
    for path in policies():
        out = subprocess.run([str(OXDEAI), "verify", "--no-cache", "--format", "json", str(path)], capture_output=True,
                             text=True, check=False).stdout
        for result in json.loads(out)["files"][0]["results"]:
            statuses[f"{path.relative_to(ROOT)}: {result['kind']} {result['property']}"] = result["status"]
    return statuses, time.perf_counter() - started


def burn(stop: object) -> None:
    while not stop.is_set():  # type: ignore[attr-defined]
        sum(i * i for i in range(10_000))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--burners", type=int, default=multiprocessing.cpu_count())
    burners = parser.parse_args().burners
    idle, idle_s = verify_all()
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=burn, args=(stop,)) for _ in range(burners)]
    for p in procs:
        p.start()
    try:
        busy, busy_s = verify_all()
    finally:
        stop.set()
        for p in procs:
            p.join()
    print(f"{'property':<70} {'idle':<9} {f'{burners} burners':<9}")
    for name in sorted(idle):
        mark = "" if idle[name] == busy.get(name) else "   <-- differs"
        print(f"{name:<70} {idle[name]:<9} {busy.get(name, '-'):<9}{mark}")
    same = idle == busy
    counts = {s: sum(v == s for v in idle.values()) for s in ("proved", "violated", "unknown")}
    print(f"\n{len(idle)} properties in {len(policies())} files: {counts}; idle {idle_s:.1f} s, "
          f"busy {busy_s:.1f} s; {'identical' if same else 'DIFFERENT'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
