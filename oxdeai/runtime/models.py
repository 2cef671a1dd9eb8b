"""Decisions, their canonical JSON, and hashes.

Contract: `canonical_json` is RFC 8785 for the values the language has (ints
within +-(2^53-1), strings, bools, null, lists, objects): keys sorted by UTF-16
code units, no white space, UTF-8 (orjson writes it when no character at or above
U+E000 appears, or every key is ASCII, where its code point order is UTF-16 order; the
standard library otherwise; a property test holds both to a reference). Every hash is SHA-256 over it. A `Decision`
is cheap to build on the hot path; its hashes, id and pydantic model are
computed when first asked for, and are the same bytes in every process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict


def _sorted(value: Any) -> Any:
    """`value` with every object's keys in UTF-16 code unit order (the slow, general path)."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=lambda s: s.encode("utf-16-be"))}
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


def _ascii_keys(value: Any) -> bool:
    """True when every object key inside `value` is ASCII, where code point order is UTF-16 order."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not k.isascii() or (isinstance(v, _CONTAINERS) and not _ascii_keys(v)):
                return False
    elif isinstance(value, _CONTAINERS):
        return all(not isinstance(v, _CONTAINERS) or _ascii_keys(v) for v in value)
    return True


_CONTAINERS = (dict, list, tuple)
_plain_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_sorted_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=True).encode


def canonical_json(value: Any) -> bytes:
    try:  # orjson sorts keys by code point; that is UTF-16 order unless a character >= U+E000 appears
        fast = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # a lone surrogate, an int past 64 bits, a key that is not a string
        fast = None
    if fast is not None and (fast.isascii() or max(fast) < 0xEE):  # no UTF-8 lead byte of U+E000 or above
        return fast
    if _ascii_keys(value):  # the encoders' own key sort is still the right one
        return fast if fast is not None else _sorted_json(value).encode("utf-8")
    return _plain_json(_sorted(value)).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ReasonModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    name: str | None
    message: str


class EffectModel(BaseModel):
    model_config = ConfigDict(frozen=True)
    state: str
    key: str | None
    before: int | bool
    after: int | bool


class PolicyRef(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    version: str | None
    sha256: str


class DecisionModel(BaseModel):
    """The wire form of a decision (the brief's shape)."""

    model_config = ConfigDict(frozen=True)
    decision: str
    allowed: bool
    decision_id: str
    tool: str | None
    reasons: list[ReasonModel]
    allowed_by: list[str]
    effects: list[EffectModel]
    policy: PolicyRef
    request_hash: str
    state_hash: str
    time: int
    repeat: bool = False


Reason = tuple[str, str | None, str]  # (code, name, message)
Effect = tuple[str, str, Any, Any]  # (state, key text, before, after); key "" for unkeyed


IdCallback = Callable[[str, int], None]  # (decision id, sequence number), told once per allowed call


class Decision:
    """One decision, a plain value: it knows its policy by reference, never its engine.
    `allowed`, `reasons`, `allowed_by`, `effects` are ready at once; `decision_id`,
    hashes, `model()` and `to_json()` are computed on first use. `touched` maps each
    (state, key) the decision read to the value it read (the state hash covers them).

    `on_id`, when given, is called once with (id, seq) the first time the id of an
    allowed, non-repeat decision is computed: an engine whose store does not record ids
    in the step (the memory store) learns them this way, so `complete(id)` finds the call."""

    __slots__ = ("allowed", "tool", "reasons", "allowed_by", "effects", "time", "repeat", "seq", "event",
                 "policy", "touched", "_on_id", "_request", "_id", "_json", "_hashes")

    def __init__(self, policy: PolicyRef, seq: int, allowed: bool, tool: str | None, reasons: tuple[Reason, ...],
                 allowed_by: tuple[str, ...], effects: tuple[Effect, ...], time: int,
                 request: Any, touched: dict[Any, Any], repeat: bool = False, on_id: IdCallback | None = None) -> None:
        self.policy = policy
        self._on_id = on_id
        self.seq = seq
        self.event = seq  # the store's counter when this answer was given (a repeat gets its own)
        self.allowed = allowed
        self.tool = tool
        self.reasons = reasons
        self.allowed_by = allowed_by
        self.effects = effects
        self.time = time
        self.repeat = repeat
        self._request = request
        self.touched = touched
        self._id: str | None = None
        self._json: bytes | None = None
        self._hashes: tuple[str, str] | None = None

    @property
    def decision(self) -> str:
        return "ALLOW" if self.allowed else "DENY"

    @property
    def codes(self) -> list[str]:
        return [r[0] for r in self.reasons]

    def _hash_pair(self) -> tuple[str, str]:
        if self._hashes is None:
            request = self._request.as_json() if hasattr(self._request, "as_json") else self._request
            touched = {f"{name}[{key}]" if key else name: value for (name, key), value in sorted(self.touched.items())}
            request_hash = sha256_hex(canonical_json(request))
            state_hash = sha256_hex(canonical_json({"decision": self.seq, "entries": touched}))
            self._hashes = (request_hash, state_hash)
        return self._hashes

    @property
    def request_hash(self) -> str:
        return self._hash_pair()[0]

    @property
    def state_hash(self) -> str:
        return self._hash_pair()[1]

    @property
    def decision_id(self) -> str:
        if self._id is None:
            request_hash, state_hash = self._hash_pair()
            material = f"{self.policy.sha256}:{request_hash}:{state_hash}".encode()
            self._id = "d_" + sha256_hex(material)[:32]
            if self._on_id is not None and self.allowed and not self.repeat:  # only an allowed call completes
                self._on_id(self._id, self.seq)
        return self._id

    def as_repeat(self, event: int | None = None) -> Decision:
        twin = Decision(self.policy, self.seq, self.allowed, self.tool, self.reasons, self.allowed_by,
                        (), self.time, self._request, self.touched, repeat=True)
        twin._id, twin._hashes = self._id, self._hashes
        if event is not None:
            twin.event = event
        return twin

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able record of an ALLOW, for durable idempotency records."""
        request = self._request.as_json() if hasattr(self._request, "as_json") else self._request
        return {"seq": self.seq, "tool": self.tool, "allowed_by": list(self.allowed_by), "time": self.time,
                "request": request, "touched": [[n, k, v] for (n, k), v in sorted(self.touched.items())]}

    @staticmethod
    def from_snapshot(policy: PolicyRef, snap: dict[str, Any]) -> Decision:
        touched = {(n, k): v for n, k, v in snap["touched"]}
        return Decision(policy, snap["seq"], True, snap["tool"], (), tuple(snap["allowed_by"]), (), snap["time"],
                        snap["request"], touched)

    def model(self) -> DecisionModel:
        return DecisionModel(
            decision=self.decision,
            allowed=self.allowed,
            decision_id=self.decision_id,
            tool=self.tool,
            reasons=[ReasonModel(code=c, name=n, message=m) for c, n, m in self.reasons],
            allowed_by=list(self.allowed_by),
            effects=[EffectModel(state=s, key=k or None, before=b, after=a) for s, k, b, a in self.effects],
            policy=self.policy,
            request_hash=self.request_hash,
            state_hash=self.state_hash,
            time=self.time,
            repeat=self.repeat,
        )

    def to_dict(self) -> dict[str, Any]:
        """`model().model_dump(mode="json")`, built directly (a test holds the two equal)."""
        policy = self.policy
        return {"decision": self.decision, "allowed": self.allowed, "decision_id": self.decision_id,
                "tool": self.tool,
                "reasons": [{"code": c, "name": n, "message": m} for c, n, m in self.reasons],
                "allowed_by": list(self.allowed_by),
                "effects": [{"state": s, "key": k or None, "before": b, "after": a} for s, k, b, a in self.effects],
                "policy": {"name": policy.name, "version": policy.version, "sha256": policy.sha256},
                "request_hash": self.request_hash, "state_hash": self.state_hash, "time": self.time,
                "repeat": self.repeat}

    def to_json(self) -> bytes:
        """Canonical JSON bytes: identical inputs give identical bytes."""
        if self._json is None:
            self._json = canonical_json(self.to_dict())
        return self._json

    def __repr__(self) -> str:
        return f"Decision({self.decision}, reasons={list(self.reasons)}, allowed_by={list(self.allowed_by)})"
