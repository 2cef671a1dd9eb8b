"""The decision log as a hash chain with signed checkpoints.

Contract: every line a `Chain` writes is the canonical JSON (RFC 8785) of
`{"chain": ID, "n": N, "prev": H, "record": R}`: `ID` names this writer's chain (16
random hex digits, one per log writer: several workers appending to one file keep
separate chains), `N` counts the chain's lines from 0, `H` is the SHA-256 (hex) of the
chain's previous line as written (without its newline; 64 zeros before the first), and
`R` is the record itself (a decision, a completion, a rollout) byte for byte.

A checkpoint is a line whose record is `{"checkpoint": JWS, "event": "checkpoint"}`.
The JWS (EdDSA or HS256 through PyJWT, with the signer's `kid`) signs the claims
`{"aud": "oxdeai-audit", "chain": ID, "count": N, "head": H, "iat": T, "final": F}`:
the N lines before it, through the one whose hash is H, at wall-clock second T.
Editing, removing or reordering any line before a checkpoint changes the head it
must sign; a `final` checkpoint closes the chain, so a tail cut after the last
checkpoint shows as a chain that does not end closed. The audience keeps a
checkpoint from ever passing for an authorization, and one for an authorization from
passing for a checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any

from oxdeai.runtime.models import canonical_json

if TYPE_CHECKING:  # signing needs the authz extra; a chain without checkpoints does not
    from oxdeai.authz.keys import KeyRing, Signer

GENESIS = "0" * 64
AUDIENCE = "oxdeai-audit"
CHECKPOINT_TYPE = "oxdeai-checkpoint+jwt"


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def chain_line(chain: str, n: int, prev: str, record: bytes) -> bytes:
    """The canonical line: the keys in order, the record's own bytes inside."""
    return (b'{"chain":' + canonical_json(chain) + b',"n":' + str(n).encode() + b',"prev":"' + prev.encode()
            + b'","record":' + record + b"}")


def checkpoint_token(signer: Signer, chain: str, count: int, head: str, at: int, final: bool) -> str:
    import jwt

    claims = {"aud": AUDIENCE, "chain": chain, "count": count, "final": final, "head": head, "iat": at}
    return jwt.encode(claims, signer.key, algorithm=signer.algorithm,
                      headers={"kid": signer.kid, "typ": CHECKPOINT_TYPE})


class Chain:
    """One writer's chain. Not thread-safe: the log's single writer thread owns it."""

    def __init__(self, signer: Signer | None, chain_id: str | None = None) -> None:
        self.signer = signer
        self.id = chain_id or os.urandom(8).hex()
        self.count = 0  # lines written so far, checkpoints included
        self.head = GENESIS  # the hash of the last line written
        self.since_checkpoint = 0  # records written since the last checkpoint

    def line(self, record: bytes) -> bytes:
        """The next line, carrying `record` (canonical JSON bytes)."""
        line = chain_line(self.id, self.count, self.head, record)
        self.count += 1
        self.head = line_hash(line)
        self.since_checkpoint += 1
        return line

    def checkpoint(self, at: int, final: bool = False) -> bytes | None:
        """A signed checkpoint over every line so far (None without a signing key)."""
        if self.signer is None:
            return None
        token = checkpoint_token(self.signer, self.id, self.count, self.head, at, final)
        line = self.line(b'{"checkpoint":' + canonical_json(token) + b',"event":"checkpoint"}')
        self.since_checkpoint = 0
        return line


def checkpoint_claims(token: str, keys: KeyRing) -> dict[str, Any] | str:
    """The verified claims of a checkpoint token, or why it does not verify."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        return f"the checkpoint is not a JWS: {exc}"
    kid = header.get("kid")
    if header.get("typ") != CHECKPOINT_TYPE:
        return "the token is not a checkpoint"
    if not isinstance(kid, str) or kid not in keys.keys:
        return f"the checkpoint is signed with key `{kid}`, which is not among the keys given"
    key, algorithm = keys.keys[kid]
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[algorithm], audience=AUDIENCE,
                                            options={"verify_iat": False, "require": ["chain", "count", "head",
                                                                                     "iat", "final"]})
    except jwt.PyJWTError as exc:
        return f"the checkpoint's signature does not verify with key `{kid}` ({exc})"
    return claims


def unverified_claims(token: str) -> dict[str, Any]:
    """A checkpoint's claims without checking its signature (for `audit show`, and for
    a chain checked without keys); {} when the token cannot be read."""
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims
