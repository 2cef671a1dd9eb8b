"""Decisions per second and latency for each state store, with 1, 4 and 8 client processes,
on the payments acceptance policy (a third ledger reads, the rest transfers, each allowed
transfer completed, which frees its `inflight` slot). Prints a table of medians over
--repeat runs of each configuration.

Columns: `decisions/s` counts only the time spent inside decide() (summed over the
client processes); `with completions/s` is decisions per wall second of the whole
loop, which also runs one complete() per allowed transfer; latency is per decide().

Run: .venv/bin/python bench/stores.py [--n 2000] [--repeat 5]
Starts its own redis-server on a free loopback port when the binary is installed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from oxdeai import load_policy  # noqa: E402
from oxdeai.runtime.engine import Engine  # noqa: E402
from oxdeai.runtime.store_urls import open_store  # noqa: E402

POLICY = ROOT / "tests" / "data" / "acceptance" / "01-payments" / "policy.oxp"
T0 = 1_764_000_000


def client(url: str, worker: int, n: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    policy = load_policy(POLICY)
    engine = Engine(policy, store=open_store(url, policy))
    samples = []
    allowed = 0
    began = time.perf_counter()
    for i in range(n):
        agent = {"id": f"agent-{worker}-{i % 200}", "role": "finance", "depth": 1}
        if i % 3 == 0:
            call = {"tool": "ledger.read", "args": {"account": "acct_ops"}, "nonce": f"{worker}-{i}"}
        else:
            call = {"tool": "payments.transfer", "args": {"amount": 100 + i % 900, "currency": "USD",
                                                          "to": "acct_ops"},
                    "nonce": f"{worker}-{i}", "idempotency_key": f"{worker}-{i}"}
        start = time.perf_counter_ns()
        decision = engine.decide(call, {"agent": agent, "time": T0 + i // 20})
        samples.append(time.perf_counter_ns() - start)
        if decision.allowed and call["tool"] == "payments.transfer":
            engine.complete(decision.decision_id, "ok", T0 + i // 20)  # frees the `inflight` slot
        allowed += decision.allowed
    out.put((samples, allowed, began, time.perf_counter()))


def run(url: str, processes: int, n: int) -> tuple[float, float, float, float, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=client, args=(url, w, n, queue)) for w in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    # from the first client's first decision to the last client's last (start-up excluded);
    # completions run between decisions and count against the rate
    wall = max(r[3] for r in results) - min(r[2] for r in results)
    samples = sorted(s for r in results for s in r[0])
    allowed = sum(r[1] for r in results) / len(samples)
    micro = [s / 1000 for s in samples]
    busy = sum(samples) / 1e9 / processes  # seconds each client spent inside decide()
    return len(samples) / busy, len(samples) / wall, statistics.median(micro), micro[int(len(micro) * 0.99)], allowed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000, help="decisions per process")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration (medians are shown)")
    options = parser.parse_args()
    n, repeat = options.n, options.repeat
    tmp = Path(tempfile.mkdtemp())
    redis = None
    if shutil.which("redis-server"):
        port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        time.sleep(0.5)
    print(f"medians of {repeat} runs of {n:,} decisions per process")
    print(f"{'store':<10} {'processes':>9} {'decisions/s':>12} {'with completions/s':>19} {'median µs':>10} "
          f"{'p99 µs':>9} {'allowed':>8}")
    try:
        for kind in ("memory", "sqlite", "redis"):
            for processes in (1, 4, 8):
                if kind == "memory":
                    if processes > 1:
                        continue  # one process's memory is not shared
                elif kind == "redis" and redis is None:
                    print(f"{'redis':<10} {'-':>9}  (no redis-server installed)")
                    break
                runs = []
                for r in range(repeat):  # a fresh store each run
                    url = {"memory": "memory://", "sqlite": f"sqlite:///{tmp / f'bench-{processes}-{r}.db'}",
                           "redis": f"redis://127.0.0.1:{port}/0?prefix=bench{processes}-{r}:"}[kind]
                    runs.append(run(url, processes, n))
                decide_s, per_s, median, p99, allowed = (statistics.median(column) for column in zip(*runs, strict=True))
                print(f"{kind:<10} {processes:>9} {decide_s:>12,.0f} {per_s:>19,.0f} {median:>10.1f} {p99:>9.1f} "
                      f"{allowed:>8.0%}", flush=True)
    finally:
        if redis is not None:
            redis.terminate()


if __name__ == "__main__":
    main()
