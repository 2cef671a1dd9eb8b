"""Credentials: which API key or bearer token is which agent.

Contract: the keys file is JSON, `{"keys": [ENTRY, ...]}`, each ENTRY
`{"name": N, "sha256": HEX | "key": TEXT, "agent": RECORD, "admin": BOOL}`: `name` is
what the decision log and metrics call the caller; `sha256` is the hex SHA-256 of the
credential (so the file holds no secret; `key` gives the credential itself, for
development); `agent` is the trusted agent record every decision for that credential
is made with, checked against the policy's `agent` declaration when the file is
loaded; `admin` allows `POST /v1/policy/reload`. A credential comes in as
`Authorization: Bearer CRED` or `X-API-Key: CRED`; `Keys.find` answers its entry or
None — never which part failed. Errors loading the file are `KeysError` naming the
entry and the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_CREDENTIAL = 512  # characters; a longer header is not looked up


class KeysError(ValueError):
    """The keys file cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True)
class Caller:
    name: str
    agent: dict[str, Any] | None  # None: an admin credential that decides nothing
    admin: bool = False


class Keys:
    def __init__(self, callers: dict[str, Caller]) -> None:
        self._by_digest = callers  # hex SHA-256 of the credential -> its caller

    def __len__(self) -> int:
        return len(self._by_digest)

    def find(self, headers: Any) -> Caller | None:
        """The caller a request's `Authorization: Bearer` or `X-API-Key` header names."""
        credential = headers.get("x-api-key")
        if credential is None:
            scheme, _, rest = (headers.get("authorization") or "").partition(" ")
            credential = rest.strip() if scheme.lower() == "bearer" else None
        if not credential or len(credential) > MAX_CREDENTIAL:
            return None
        return self._by_digest.get(hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest())


def load_keys(text: str, check_agent: Callable[[Any], list[str]]) -> Keys:
    """Parse a keys file. `check_agent(record)` gives the problems of an agent record
    under the policy (none when it fits)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise KeysError(f"the keys file is not valid JSON: {exc}") from None
    entries = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise KeysError('the keys file must be {"keys": [{"name": ..., "sha256": ..., "agent": {...}}, ...]}')
    callers: dict[str, Caller] = {}
    names: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"keys[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise KeysError(f"{where}: every entry needs a `name` (what the log calls this caller)")
        name, where = entry["name"], f"keys[{i}] (`{entry['name']}`)"
        unknown = set(entry) - {"name", "sha256", "key", "agent", "admin"}
        if unknown:
            raise KeysError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        digest = _digest(entry, where)
        if name in names or digest in callers:
            raise KeysError(f"{where}: the name or the credential is given twice")
        agent = entry.get("agent")
        admin = entry.get("admin", False)
        if not isinstance(admin, bool):
            raise KeysError(f"{where}: `admin` is true or false")
        if agent is None and not admin:
            raise KeysError(f"{where}: give the `agent` record decisions for this credential are made with")
        if agent is not None:
            problems = check_agent(agent)
            if problems:
                raise KeysError(f"{where}: the agent record does not fit the policy: {'; '.join(problems)}")
        names.add(name)
        callers[digest] = Caller(name, agent, admin)
    return Keys(callers)


def _digest(entry: dict[str, Any], where: str) -> str:
    if ("sha256" in entry) == ("key" in entry):
        raise KeysError(f"{where}: give exactly one of `sha256` (the credential's hex SHA-256) or `key`")
    if "key" in entry:
        key = entry["key"]
        if not isinstance(key, str) or not 16 <= len(key) <= MAX_CREDENTIAL:
            raise KeysError(f"{where}: `key` is a string of 16 to {MAX_CREDENTIAL} characters")
        return hashlib.sha256(key.encode("utf-8")).hexdigest()
    digest = entry["sha256"]
    if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise KeysError(f"{where}: `sha256` is 64 lowercase hex digits (sha256sum of the credential)")
    return digest
