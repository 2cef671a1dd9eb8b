"""`oxdeai serve --signing-key`: each ALLOW carries a signed authorization that an
executor verifies with nothing but the service's JWKS document."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.server.conftest import KEYS, PRO, Served

pytest.importorskip("jwt")
from oxdeai.authz.keys import KeyRing, Signer  # noqa: E402
from oxdeai.authz.replay import MemoryReplay  # noqa: E402
from oxdeai.pep import Authorized, verify  # noqa: E402


def test_an_allow_carries_a_token_the_jwks_alone_verifies(tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    key.write_bytes(Signer.generate().private_pem())
    served = Served(tmp_path, "memory://", EXAMPLES / "shop.oxp", "--signing-key", str(key), "--audience", "pay-gw")
    try:
        call = {"tool": "pay.slow", "args": {"amount": 5}, "nonce": "n1"}
        allowed = served.http.post("/v1/decide", headers=PRO, json=call)
        token = allowed.headers["OxDeAI-Authorization"]
        denied = served.http.post("/v1/decide", headers=PRO, json={**call, "nonce": "n2", "args": {"amount": 0}})
        assert denied.json()["decision"] == "DENY" and "OxDeAI-Authorization" not in denied.headers
        ring = KeyRing.from_jwks(served.http.get("/.well-known/jwks.json").json())
        agent = KEYS["keys"][0]["agent"]
        answer = verify(token, call, {"agent": agent}, audience="pay-gw", keys=ring, replay=MemoryReplay())
        assert isinstance(answer, Authorized) and answer.decision_id == allowed.json()["decision_id"]
        changed = verify(token, {**call, "args": {"amount": 6}}, {"agent": agent}, audience="pay-gw", keys=ring,
                         replay=MemoryReplay())
        assert changed.reason == "wrong_call"  # type: ignore[union-attr]
    finally:
        stderr = served.stop()
    assert "Traceback" not in stderr, stderr


def test_without_a_signing_key_there_is_no_jwks(tmp_path: Path) -> None:
    served = Served(tmp_path)
    try:
        assert served.http.get("/.well-known/jwks.json").status_code == 404
    finally:
        served.stop()
