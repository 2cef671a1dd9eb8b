"""Load on `oxdeai serve` over loopback: throughput and latency per store and worker count.

Run: .venv/bin/python bench/serve.py [--seconds S] [--connections C] [--workers 1 2 4] [--stores memory sqlite redis]

For each store and worker count it starts a real `oxdeai serve` (and, for Redis, a
redis-server of its own on a free port, no persistence), then drives POST /v1/decide
from one client process over C keep-alive connections: first closed-loop (each
connection sends its next request when the last is answered) for the peak, then
open-loop at half that peak (requests on a fixed schedule, latency counted from the
scheduled time, so a stall is not hidden). The client is a minimal HTTP/1.1 writer
and reader on asyncio streams so that it, and not the service, is rarely the limit;
it shares the machine's cores with the service, so the figures are a floor. The
request mix is fixed: half reads, half refunds that add to a per-agent daily sum.
Prints one table; `memory://` runs with one worker only (each would count alone).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

POLICY = """policy bench_serve version "1"
agent { id: string, role: "support" | "finance" }
tool crm.read(customer: string)
tool crm.refund(customer: string, amount: int[1..10_000])
limit refunds on crm.refund: sum args.amount per agent.id every 1d <= 1_000_000_000
allow read on crm.read
allow refund on crm.refund when args.amount <= 1_000
deny big on crm.refund when args.amount > 5_000 because "needs a human"
"""
AGENTS = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"a server exited: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def requests() -> list[bytes]:
    """The fixed mix, as raw HTTP requests."""
    out = []
    for i in range(64):
        agent = i % AGENTS
        body = {"tool": "crm.read", "args": {"customer": f"c{i}"}} if i % 2 == 0 else \
            {"tool": "crm.refund", "args": {"customer": f"c{i}", "amount": 1 + (i * 37) % 900}}
        raw = json.dumps(body).encode()
        out.append(b"POST /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: bench-agent-credential-%d\r\n"
                   b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (agent, len(raw), raw))
    return out


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    await reader.readexactly(length)


async def load(port: int, connections: int, seconds: float, rate: float | None) -> tuple[int, list[float]]:
    """Closed-loop when `rate` is None, else open-loop at `rate` requests/s in all."""
    mix = requests()
    latencies: list[float] = []
    done = 0
    end = time.perf_counter() + seconds

    async def one(c: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        interval = connections / rate if rate else 0.0
        due = time.perf_counter() + (c * interval / connections if rate else 0.0)
        i = c
        while (now := time.perf_counter()) < end:
            if rate:
                if due > now:
                    await asyncio.sleep(due - now)
                start, due = due, due + interval
            else:
                start = now
            await exchange(reader, writer, mix[i % len(mix)])
            latencies.append(time.perf_counter() - start)
            done += 1
            i += connections
        writer.close()

    await asyncio.gather(*(one(c) for c in range(connections)))
    return done, latencies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


def run(store: str, workers: int, seconds: float, connections: int, work: Path) -> list[str]:
    policy = work / "bench.oxp"
    policy.write_text(POLICY)
    keys = work / "keys.json"
    keys.write_text(json.dumps({"keys": [
        {"name": f"agent-{i}", "key": f"bench-agent-credential-{i}", "agent": {"id": f"a{i}", "role": "support"}}
        for i in range(AGENTS)]}))
    helpers: list[subprocess.Popen[bytes]] = []
    url = "memory://"
    if store == "sqlite":
        url = f"sqlite:///{work / f'state-{workers}.db'}"
    if store == "redis":
        binary = shutil.which("redis-server")
        if binary is None:
            return [f"| redis | {workers} | (no redis-server) | | | | |"]
        redis_port = free_port()
        helpers.append(subprocess.Popen([binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL))
        wait_for(redis_port, helpers[-1])
        url = f"redis://127.0.0.1:{redis_port}/0?prefix=bench{workers}:"
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "oxdeai.cli", "serve", str(policy), "--keys", str(keys),
                              "--store", url, "--port", str(port), "--workers", str(workers)],
                             stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_for(port, serve)
        time.sleep(1.0 * workers)  # every worker up
        asyncio.run(load(port, connections, 1.0, None))  # warm-up
        gc.collect()
        gc.disable()  # the client is the instrument: its own collector's pauses are not the service's latency
        try:
            done, peak = asyncio.run(load(port, connections, seconds, None))
            throughput = done / seconds
            time.sleep(0.5)  # what the peak left queued drains before the schedule starts
            _, half = asyncio.run(load(port, connections, seconds, throughput / 2))
        finally:
            gc.enable()
        return [f"| {store} | {workers} | {throughput:,.0f} | {percentile(peak, 0.5) * 1e3:.2f} | "
                f"{percentile(peak, 0.99) * 1e3:.2f} | {percentile(half, 0.5) * 1e3:.2f} | "
                f"{percentile(half, 0.99) * 1e3:.2f} |"]
    finally:
        for proc in [serve, *helpers]:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--stores", nargs="+", default=["memory", "sqlite", "redis"])
    args = parser.parse_args()
    print(f"oxdeai serve on loopback, {os.cpu_count()} CPUs, {args.connections} connections, "
          f"{args.seconds:g} s per run")
    print("| store | workers | decisions/s (peak) | p50 ms | p99 ms | p50 ms at half | p99 ms at half |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.stores:
            for workers in args.workers:
                if store == "memory" and workers > 1:
                    continue
                for line in run(store, workers, args.seconds, args.connections, Path(tmp)):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
