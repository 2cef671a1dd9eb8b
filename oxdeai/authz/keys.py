"""Keys for authorizations: one signing key at the decision point, a key ring at the executor.

Contract: a `Signer` is an Ed25519 private key (JWS `EdDSA`) or, for a single host, an
HMAC secret (`HS256`), with its key id (`kid`: for Ed25519 the first 16 hex digits of
the SHA-256 of the raw public key unless one is given). A `KeyRing` maps key ids to
verification keys, each with the one algorithm it may verify (so a token cannot pick
its own algorithm: no `none`, no HMAC-with-a-public-key confusion). Rotation: a ring
holds the current and the previous keys; dropping a key id rejects its tokens
(`unknown_key`). Keys load from PEM files or text (e.g. an environment variable), and
a ring from a JWKS document (`jwks()` publishes one). All cryptography is the
`cryptography` package's, through PyJWT.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK
from jwt.algorithms import OKPAlgorithm


class KeyProblem(ValueError):
    """A key that cannot be used; the message says which and why."""


def _pem(source: str | bytes | Path) -> bytes:
    if isinstance(source, Path):
        return source.read_bytes()
    return source.encode() if isinstance(source, str) else source


def key_id(public: Ed25519PublicKey) -> str:
    """The default `kid` of an Ed25519 key: 16 hex digits of its raw public key's SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    key: Any  # Ed25519PrivateKey, or the HMAC secret (bytes)
    kid: str
    algorithm: str  # EdDSA | HS256

    @staticmethod
    def generate(kid: str | None = None) -> Signer:
        key = Ed25519PrivateKey.generate()
        return Signer(key, kid or key_id(key.public_key()), "EdDSA")

    @staticmethod
    def from_pem(source: str | bytes | Path, kid: str | None = None) -> Signer:
        try:
            key = serialization.load_pem_private_key(_pem(source), password=None)
        except (ValueError, TypeError, OSError) as exc:
            raise KeyProblem(f"not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyProblem(f"the signing key must be Ed25519, not {type(key).__name__}")
        return Signer(key, kid or key_id(key.public_key()), "EdDSA")

    @staticmethod
    def hmac(secret: bytes, kid: str) -> Signer:
        if len(secret) < 32:
            raise KeyProblem("an HMAC secret must be at least 32 bytes")
        return Signer(secret, kid, "HS256")

    def private_pem(self) -> bytes:
        assert isinstance(self.key, Ed25519PrivateKey)
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def verification_key(self) -> tuple[Any, str]:
        return (self.key.public_key() if self.algorithm == "EdDSA" else self.key), self.algorithm


class KeyRing:
    def __init__(self, keys: dict[str, tuple[Any, str]] | None = None) -> None:
        self.keys: dict[str, tuple[Any, str]] = dict(keys or {})  # kid -> (key, its one algorithm)

    @staticmethod
    def of(*signers: Signer) -> KeyRing:
        return KeyRing({s.kid: s.verification_key() for s in signers})

    def add_pem(self, kid: str | None, source: str | bytes | Path) -> str:
        """Add an Ed25519 public key; its key id is `kid`, or the default one of the key
        (as `Signer` derives it). Returns the key id."""
        named = f"key `{kid}`" if kid else "the key"
        try:
            key = serialization.load_pem_public_key(_pem(source))
        except (ValueError, TypeError, OSError) as exc:
            raise KeyProblem(f"{named}: not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyProblem(f"{named} must be Ed25519, not {type(key).__name__}")
        kid = kid or key_id(key)
        self.keys[kid] = (key, "EdDSA")
        return kid

    def without(self, kid: str) -> KeyRing:
        return KeyRing({k: v for k, v in self.keys.items() if k != kid})

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JWKS document (HMAC secrets are never published)."""
        out = []
        for kid, (key, algorithm) in sorted(self.keys.items()):
            if algorithm == "EdDSA":
                jwk = json.loads(OKPAlgorithm.to_jwk(key))
                out.append({**jwk, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": out}

    @staticmethod
    def from_jwks(document: dict[str, Any]) -> KeyRing:
        ring = KeyRing()
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and isinstance(jwk.get("kid"), str):
                ring.keys[jwk["kid"]] = (PyJWK(jwk, algorithm="EdDSA").key, "EdDSA")
        return ring
