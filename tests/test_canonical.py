"""Canonical JSON (RFC 8785 for the values decisions hold): keys in UTF-16 code unit order."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from oxdeai.runtime.models import canonical_json


def reference(value: Any) -> bytes:
    """Sort every object's keys by their UTF-16 encoding, the slow obvious way."""
    def norm(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: norm(v[k]) for k in sorted(v, key=lambda s: s.encode("utf-16-be"))}
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v
    return json.dumps(norm(value), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


keys = st.text(alphabet=st.sampled_from(["a", "b", "Z", "é", "\ud7ff", "\ue000", "\uffff", "😀", "\U0001ffff"]),
               max_size=3)
scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=5)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=20)


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is D83D DE00 in UTF-16, below U+E000; by code point it is above
    assert canonical_json({"\ue000": 1, "😀": 2, "a": 3}) == '{"a":3,"😀":2,"\ue000":1}'.encode()
    assert canonical_json({"b": [{"\ue000": 1, "😀": 2}], "a": None}) == '{"a":null,"b":[{"😀":2,"\ue000":1}]}'.encode()


@given(values)
def test_canonical_json_matches_the_reference(value: Any) -> None:
    assert canonical_json(value) == reference(value)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",)),
               max_size=8)
       | st.integers(-(2**70), 2**70))
def test_any_text_and_ints_past_64_bits_give_the_reference_bytes(value: Any) -> None:
    """Every code point orjson escapes or not as the standard library does; an int orjson
    refuses (past 64 bits) takes the standard library's path. (Lone surrogates never get
    here: a request holding one is `invalid_request`, and reason texts escape them.)"""
    assert canonical_json({"k": [value]}) == json.dumps({"k": [value]}, ensure_ascii=False, separators=(",", ":"),
                                                        allow_nan=False).encode("utf-8")


def test_a_decisions_json_is_its_pydantic_model_dumped() -> None:
    from oxdeai import load_policy
    from oxdeai.runtime.engine import Engine
    from tests.conftest import EXAMPLES
    engine = Engine(load_policy(EXAMPLES / "shop.oxp"))
    agent = {"agent": {"id": "a1", "tier": "pro"}, "time": 1_764_000_000}
    calls = [{"tool": "pay.charge", "args": {"amount": 60, "to": "x"}, "nonce": "1", "idempotency_key": "k"},
             {"tool": "pay.charge", "args": {"amount": 60, "to": "x"}, "nonce": "2", "idempotency_key": "k2"},
             {"tool": "pay.charge", "args": {"amount": 60, "to": "x"}, "nonce": "3", "idempotency_key": "k"},
             {"tool": "mail.send", "args": {"to": "a@rival.example"}, "nonce": "4"},
             {"tool": "nope", "args": {"\ud800": 1}}]
    for call in calls:
        decision = engine.decide(call, agent)
        assert decision.to_dict() == decision.model().model_dump(mode="json")
        assert decision.to_json() == reference(decision.model().model_dump(mode="json"))
