"""Parser and checker robustness: any input gives a policy or diagnostics, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oxdeai.dsl.policy import compile_source, decode_source
from tests.conftest import ACCEPTANCE, EXAMPLES

VALID = [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.oxp"))] + [
    p.read_text(encoding="utf-8") for p in sorted(ACCEPTANCE.rglob("*.oxp"))]
TOKENS = ["policy", "tool", "allow", "deny", "on", "when", "(", ")", "{", "}", ",", ":", "=", "==", "<=", "..",
          "-", "*", ".*", "\"", "\\", "#", "\n", "args.", "agent.", "limit", "sum", "per", "every", "1d", "_", "9" * 30,
          "matches", "\"[\"", "if", "then", "else", "not", "in", "\u00e9", "\U0001F600"]


def _compile_never_raises(text: str) -> None:
    policy, diagnostics = compile_source(text, "fuzz.oxp")
    assert policy is not None or any(d.is_error for d in diagnostics)
    for d in diagnostics:
        assert d.code and d.message and d.span.line >= 0


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    text, diagnostics = decode_source(data)
    if text is None:
        assert diagnostics and diagnostics[0].is_error
    else:
        _compile_never_raises(text)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 20),
                                                   st.sampled_from(TOKENS)), min_size=1, max_size=4))
def test_mutations_of_valid_policies(source: str, edits: list[tuple[int, int, str]]) -> None:
    text = source
    for position, cut, token in edits:
        at = position % (len(text) + 1)
        text = text[:at] + token + text[at + cut:]
    _compile_never_raises(text)
