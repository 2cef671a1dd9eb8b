"""Issuing an authorization: one allowed call, signed, for one executor, for a short time.

Contract: `request_hash(call, context)` is the SHA-256 of the canonical JSON (RFC 8785)
of `{"call": call, "context": context}` — the call as the executor will run it (tool,
args, nonce, idempotency key) and the trusted context it was decided in (agent, and
time when the host gave one). `issue(decision, call, context, ...)` signs the claims
`iss`, `aud` (the executor), `iat`, `exp` (`ttl` seconds later), `jti` (random, for
single use), `dec` (the decision id), `req` (the request hash), `tool` and `pol`
(policy name, version, sha256), with the signer's `kid` in the header. Only an ALLOW
is issued (`ValueError` otherwise).
"""

from __future__ import annotations

import hashlib
import time as wallclock
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from oxdeai.authz.keys import Signer
from oxdeai.runtime.models import Decision, canonical_json

DEFAULT_TTL = 60  # seconds


def request_hash(call: dict[str, Any], context: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"call": call, "context": context})).hexdigest()


def issue(decision: Decision, call: dict[str, Any], context: dict[str, Any], *, signer: Signer, audience: str,
          issuer: str = "oxdeai", ttl: int = DEFAULT_TTL, now: int | None = None) -> str:
    if not decision.allowed:
        raise ValueError("only an allowed call is issued an authorization")
    at = int(wallclock.time()) if now is None else now
    policy = decision.policy
    claims = {"iss": issuer, "aud": audience, "iat": at, "exp": at + ttl, "jti": uuid.uuid4().hex,
              "dec": decision.decision_id, "req": request_hash(call, context), "tool": decision.tool,
              "pol": {"name": policy.name, "version": policy.version, "sha256": policy.sha256}}
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers={"kid": signer.kid})


@dataclass(frozen=True)
class Issuer:
    """Who issues authorizations at a decision point: the signer, the executor they are
    for (`audience`), how long they live, and the `iss` claim."""

    signer: Signer
    audience: str
    ttl: int = DEFAULT_TTL
    name: str = "oxdeai"

    def token(self, decision: Decision, call: dict[str, Any], context: dict[str, Any]) -> str:
        return issue(decision, call, context, signer=self.signer, audience=self.audience, issuer=self.name,
                     ttl=self.ttl)
