"""A real `oxdeai serve` on a free loopback port, started as the command line starts it."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES

if os.environ.get("CI") == "true":  # under CI a missing library is an error, never a silent skip
    for module in ("httpx", "starlette", "prometheus_client", "uvicorn"):
        importlib.import_module(module)
httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("prometheus_client")

KEYS = {"keys": [
    {"name": "pro-bot", "key": "pro-bot-credential-1", "agent": {"id": "agent-1", "tier": "pro"}},
    {"name": "free-bot", "key": "free-bot-credential-2", "agent": {"id": "agent-2", "tier": "free"}},
    {"name": "ops", "key": "ops-admin-credential-3", "admin": True},
]}
PRO = {"X-API-Key": "pro-bot-credential-1"}
FREE = {"Authorization": "Bearer free-bot-credential-2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, workdir: Path, store: str = "memory://", policy: Path = EXAMPLES / "shop.oxp",
                 *options: str) -> None:
        self.port = free_port()
        keys = workdir / "keys.json"
        keys.write_text(json.dumps(KEYS))
        self.log = workdir / "decisions.jsonl"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oxdeai.cli", "serve", str(policy), "--keys", str(keys), "--store", store,
             "--port", str(self.port), "--log", str(self.log), *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"oxdeai serve did not start: {self.proc.communicate(timeout=10)}")
            time.sleep(0.1)

    def decide(self, headers: dict[str, str], **body: Any) -> Any:
        return self.http.post("/v1/decide", headers=headers, json=body)

    def metric(self, name: str, /, **labels: str) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        wanted = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
        for line in self.http.get("/metrics").text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample.startswith(name) and (sample == name + wanted or _labels_match(sample, name, labels)):
                return float(value)
        return 0.0

    def stop(self) -> str:
        self.http.close()
        self.proc.terminate()
        _, stderr = self.proc.communicate(timeout=30)
        return stderr


def _labels_match(sample: str, name: str, labels: dict[str, str]) -> bool:
    if not sample.startswith(name + "{"):
        return False
    have = dict(part.split("=", 1) for part in sample[len(name) + 1:-1].split(","))
    return all(have.get(k) == f'"{v}"' for k, v in labels.items())


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    service = Served(tmp_path)
    yield service
    stderr = service.stop()
    assert "Traceback" not in stderr, stderr
