"""Strict JSON for what callers send: requests, traces, state files, service bodies.

Contract: `loads_strict(text)` is `json.loads` except that an object naming a key twice
raises `DuplicateKey` (parsers disagree on which one wins, so what was decided could
differ from what runs) and NaN / Infinity raise `ValueError`, as does anything that
is not JSON. Both are `ValueError`s.
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKey(f"the key {json.dumps(key, ensure_ascii=False)[:80]} appears twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"`{name}` is not JSON")


def loads_strict(text: str | bytes) -> Any:
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
