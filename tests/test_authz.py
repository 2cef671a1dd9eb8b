"""Signed authorizations and the executor's check: exact call, one use, the right key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxdeai import Engine, load_policy
from oxdeai.authz.keys import KeyRing, Signer
from oxdeai.authz.replay import MemoryReplay, open_replay
from oxdeai.authz.tokens import issue
from oxdeai.pep import Authorized, Refused, verify
from tests.conftest import EXAMPLES

T0 = 1_764_000_000
CALL = {"tool": "pay.charge", "args": {"amount": 40, "to": "acct-1", "note": "none"}, "nonce": "n1",
        "idempotency_key": "k1"}
CONTEXT = {"agent": {"id": "a1", "tier": "pro"}, "time": T0}
SIGNER = Signer.generate()
RING = KeyRing.of(SIGNER)


def _token(signer: Signer = SIGNER, ttl: int = 30, call: dict[str, Any] = CALL) -> str:
    decision = Engine(load_policy(EXAMPLES / "shop.oxp")).decide(call, CONTEXT)
    assert decision.allowed
    return issue(decision, call, CONTEXT, signer=signer, audience="payments-executor", ttl=ttl, now=T0)


def _check(token: str, call: dict[str, Any] = CALL, context: dict[str, Any] = CONTEXT, **kw: Any) -> Any:
    options: dict[str, Any] = {"audience": "payments-executor", "keys": RING, "replay": MemoryReplay(), "now": T0 + 1}
    return verify(token, call, context, **{**options, **kw})


def test_a_token_verifies_for_its_exact_call_only() -> None:
    token = _token()
    ok = _check(token)
    assert isinstance(ok, Authorized) and ok.tool == "pay.charge" and ok.policy["name"] == "shop"
    changed = {**CALL, "args": {**CALL["args"], "amount": 41}}
    assert _check(token, changed) == Refused("wrong_call", "the call or its context is not the one authorized")
    other_agent = {**CONTEXT, "agent": {"id": "a2", "tier": "pro"}}
    assert _check(token, context=other_agent).reason == "wrong_call"  # type: ignore[union-attr]
    assert _check(token, audience="mail-executor").reason == "wrong_audience"  # type: ignore[union-attr]
    assert _check(token, now=T0 + 30 + 5).__class__ is Authorized  # within the leeway
    assert _check(token, now=T0 + 36).reason == "expired"  # type: ignore[union-attr]


def test_a_token_is_used_once() -> None:
    token, store = _token(), MemoryReplay()
    assert isinstance(_check(token, replay=store), Authorized)
    assert _check(token, replay=store).reason == "replayed"  # type: ignore[union-attr]


def test_wrong_rotated_out_and_malformed_tokens_are_refused() -> None:
    other = Signer.generate(kid=SIGNER.kid)  # the same key id, another key: a forgery
    assert _check(_token(other)).reason == "bad_signature"  # type: ignore[union-attr]
    assert _check(_token(), keys=RING.without(SIGNER.kid)).reason == "unknown_key"  # type: ignore[union-attr]
    token = _token()
    head, body, signature = token.split(".")
    for bad in ("", "x", "a.b.c", f"{head}.{body}.", f"{head}.{body}x.{signature}", 42, None, "." * 20_000):
        refused = _check(bad)  # type: ignore[arg-type]
        assert isinstance(refused, Refused) and refused.reason in ("malformed", "bad_signature"), (bad, refused)
    hmac_signer = Signer.hmac(b"k" * 32, "h1")
    public_as_secret = KeyRing({"h1": (b"k" * 32, "HS256")})
    assert isinstance(_check(_token(hmac_signer), keys=public_as_secret), Authorized)  # the single-host mode
    assert _check(_token(hmac_signer)).reason == "unknown_key"  # type: ignore[union-attr]


def test_keys_load_from_pem_and_a_jwks_document_is_enough_to_verify() -> None:
    signer = Signer.from_pem(SIGNER.private_pem().decode())
    assert signer.kid == SIGNER.kid
    ring = KeyRing.from_jwks(json.loads(json.dumps(RING.jwks())))
    assert isinstance(_check(_token(), keys=ring), Authorized)


def test_an_independent_jwt_library_verifies_our_token() -> None:
    joserfc = pytest.importorskip("joserfc")
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OKPKey
    (jwk,) = RING.jwks()["keys"]
    token = jose_jwt.decode(_token(), OKPKey.import_key(jwk), algorithms=["EdDSA"])
    assert token.header["kid"] == SIGNER.kid and token.claims["aud"] == "payments-executor"
    assert token.claims["tool"] == "pay.charge" and joserfc is not None


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_single_use_holds_across_two_processes_sharing_a_replay_store(kind: str, tmp_path: Path) -> None:
    redis = None
    if kind == "redis":
        from tests.stores.test_redis import RedisServer, need_redis_server
        need_redis_server()
        redis = RedisServer(tmp_path)
        redis.start()
    url = f"sqlite:///{tmp_path / 'replay.db'}" if kind == "sqlite" else f"redis://127.0.0.1:{redis.port}/0"  # type: ignore[union-attr]
    (tmp_path / "token").write_text(_token())
    (tmp_path / "ring.json").write_text(json.dumps(RING.jwks()))
    script = (
        "import json, sys; from oxdeai.authz.keys import KeyRing; from oxdeai.pep import verify\n"
        f"from tests.test_authz import CALL, CONTEXT, T0\n"
        f"ring = KeyRing.from_jwks(json.load(open({str(tmp_path / 'ring.json')!r})))\n"
        f"r = verify(open({str(tmp_path / 'token')!r}).read(), CALL, CONTEXT, audience='payments-executor', "
        f"keys=ring, replay={url!r}, now=T0 + 1)\n"
        "print(getattr(r, 'reason', 'ok'))\n")
    try:
        answers = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                                  cwd=Path(__file__).resolve().parent.parent).stdout.strip() for _ in range(2)]
    finally:
        if redis is not None:
            redis.stop()
    assert answers == ["ok", "replayed"]
    assert open_replay("memory://").first_use("j", T0, T0)
