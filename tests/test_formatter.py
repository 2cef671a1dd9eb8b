"""The formatter is meaning-preserving and idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxdeai.dsl import ast as A
from oxdeai.dsl.formatter import format_policy
from oxdeai.dsl.parser import parse_source
from oxdeai.dsl.strings import quote, unescape
from tests.conftest import ACCEPTANCE, EXAMPLES, run_cli
from tests.strategies.policies import policy_asts


def _fmt(text: str) -> str:
    parsed = parse_source(text)
    assert parsed.policy is not None, parsed.diagnostics
    return format_policy(parsed.policy, parsed.comments, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_asts())
def test_random_asts_round_trip(policy: A.Policy) -> None:
    """Printing a policy and parsing it back gives the same AST, and printing is a fixed point."""
    text = format_policy(policy, (), "")
    assert parse_source(text).policy == policy
    assert _fmt(text) == text


@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=24))  # every scalar value
def test_string_literals_round_trip(value: str) -> None:
    assert unescape(quote(value)[1:-1]) == value


SOURCES = sorted(EXAMPLES.glob("*.oxp")) + sorted(
    p for p in ACCEPTANCE.rglob("*.oxp") if parse_source(p.read_text()).policy is not None)


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.name) + "-" + p.parent.name for p in SOURCES])
def test_idempotent_and_meaning_preserving(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    once = _fmt(text)
    assert _fmt(once) == once
    assert parse_source(once).policy == parse_source(text).policy
    assert [c.text for c in parse_source(once).comments] == [c.text for c in parse_source(text).comments]


def test_examples_are_formatted() -> None:
    for path in sorted(EXAMPLES.glob("*.oxp")):
        assert _fmt(path.read_text()) == path.read_text(), path


def test_comments_and_blank_lines_kept() -> None:
    text = "# head\npolicy p  # name\n\n\n# tools\ntool a.b()\n\nallow r on a.b # why\n  when true\n# tail\n"
    assert _fmt(text) == "# head\npolicy p  # name\n\n# tools\ntool a.b()\n\nallow r on a.b when true  # why\n# tail\n" \
        or _fmt(text) == "# head\npolicy p  # name\n\n# tools\ntool a.b()\n\n# why\nallow r on a.b when true\n# tail\n"


def test_fmt_check_names_files(tmp_path: Path) -> None:
    messy = tmp_path / "messy.oxp"
    messy.write_text("policy   p\ntool a.b()   allow r on a.b\n")
    code, out = run_cli("fmt", "--check", str(messy))
    assert code == 1 and "messy.oxp" in out
    assert run_cli("fmt", str(messy))[0] == 0
    assert run_cli("fmt", "--check", str(messy)) == (0, "")
    assert messy.read_text() == "policy p\ntool a.b()\nallow r on a.b\n"
