"""The executor's check (the policy enforcement point): is this exact call authorized?

Contract: `verify(token, call, context, audience=..., keys=..., replay=...)` never
raises for a bad token; it answers `Authorized` or `Refused(reason, detail)`, checking
in this order: the token parses (`malformed`), its key id is in the ring
(`unknown_key`), the signature verifies with that key's one algorithm
(`bad_signature`), it is for this executor (`wrong_audience`), the claims are all there
(`malformed`), it is not expired (`expired`, with `leeway` seconds of clock skew), the
call and context hash to its request hash (`wrong_call`: another argument, another
agent, another tool), and — last, so only a good token is spent — it was never used
before (`replayed`; `replay` is a store or its URL, None only where single use is
enforced elsewhere). `now` is the executor's clock (the wall clock unless given).
"""

from __future__ import annotations

import hmac
import time as wallclock
from typing import Any

import jwt

from oxdeai.authz.keys import KeyRing
from oxdeai.authz.replay import ReplayStore, open_replay
from oxdeai.authz.tokens import request_hash
from oxdeai.authz.verdicts import Authorized, Reason, Refused

__all__ = ["REQUIRED", "Authorized", "Reason", "Refused", "verify"]

REQUIRED = ("iss", "aud", "iat", "exp", "jti", "dec", "req", "pol")


def verify(token: Any, call: dict[str, Any], context: dict[str, Any], *, audience: str, keys: KeyRing,
           replay: ReplayStore | str | None, leeway: int = 5, now: int | None = None) -> Authorized | Refused:
    try:
        return _verify(token, call, context, audience, keys, replay, leeway, now)
    except Exception as exc:  # whatever a hostile token does, it is a refusal, never a crash
        return Refused("malformed", f"the token cannot be read: {type(exc).__name__}")


def _verify(token: Any, call: dict[str, Any], context: dict[str, Any], audience: str, keys: KeyRing,
            replay: ReplayStore | str | None, leeway: int, now: int | None) -> Authorized | Refused:
    if not isinstance(token, str) or len(token) > 16_384:
        return Refused("malformed", "a token is a compact JWS string")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        return Refused("malformed", f"not a JWS: {exc}")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys.keys:
        return Refused("unknown_key", f"no key `{kid}` in the ring (rotated out, or never ours)")
    key, algorithm = keys.keys[kid]
    try:
        claims = jwt.decode(token, key, algorithms=[algorithm], audience=audience,
                            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                     "require": list(REQUIRED)})
    except jwt.InvalidAudienceError:
        return Refused("wrong_audience", f"the token is not for `{audience}`")
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        return Refused("bad_signature", f"the signature does not verify with key `{kid}`")
    except jwt.PyJWTError as exc:
        return Refused("malformed", str(exc))
    at = int(wallclock.time()) if now is None else now
    exp = claims["exp"]
    if type(exp) is not int:
        return Refused("malformed", "`exp` is not an integer")
    if at > exp + leeway:
        return Refused("expired", f"expired {at - exp} s ago")
    if not hmac.compare_digest(str(claims["req"]), request_hash(call, context)):
        return Refused("wrong_call", "the call or its context is not the one authorized")
    store = open_replay(replay) if isinstance(replay, str) else replay
    if store is not None and not store.first_use(str(claims["jti"]), exp + leeway, at):
        return Refused("replayed", "this authorization was already used")
    return Authorized(str(claims["dec"]), claims.get("tool"), dict(claims["pol"]), str(claims["jti"]), exp,
                      str(claims["iss"]))
