"""The rough edges a new user hit on the command line, each with its fix held."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

UNFORMATTED = "policy p\nagent { id: string }\ntool t.x()\nallow   a on t.x\n"


def test_fmt_check_names_the_first_difference_and_diff_shows_them_all(tmp_path: Path) -> None:
    path = tmp_path / "p.oxp"
    path.write_text(UNFORMATTED)
    code, out = run_cli("fmt", "--check", str(path))
    assert code == 1 and f"would reformat {path} (first difference at line 2;" in out
    code, out = run_cli("fmt", "--diff", str(path))
    assert code == 1 and "-allow   a on t.x\n+allow a on t.x\n" in out and out.startswith("---")
    assert path.read_text() == UNFORMATTED  # neither changes the file
    run_cli("fmt", str(path))
    assert run_cli("fmt", "--diff", str(path)) == (0, "")


@pytest.mark.parametrize("option, value", [("--request", "request.json"), ("--trace", "payments.trace.jsonl"),
                                           ("--request", "EXISTING")])
def test_a_file_name_without_its_at_sign_is_named_as_such(option: str, value: str, tmp_path: Path) -> None:
    if value == "EXISTING":
        value = str(tmp_path / "req")
        Path(value).write_text("{}")
    code, out = run_cli("eval", str(EXAMPLES / "payments.oxp"), option, value)
    assert code == 2 and f"looks like a file name: give it as `@{value}`" in out


def test_state_commands_refuse_the_memory_store() -> None:
    code, out = run_cli("state", "set", "halted", "true", "--store", "memory://", "--policy",
                        str(EXAMPLES / "payments.oxp"))
    assert code == 2 and "works on a durable store" in out


@pytest.mark.parametrize("command", [["eval", "x.oxp"], ["state", "show"], ["serve", "x.oxp"],
                                     ["mcp-proxy", "--", "x"]])
def test_store_help_names_every_kind_of_store(command: list[str]) -> None:
    code, out = run_cli(*command[:1 if command[0] != "state" else 2], "--help")
    assert code == 0 and "sqlite:///PATH" in out and "redis://" in out, out


def test_the_grammar_has_no_colliding_terminals() -> None:
    """Checked here once (Lark's `strict`), not at every start of the command line."""
    import lark

    from oxdeai.dsl.parser import GRAMMAR_OPTIONS, grammar_text
    lark.Lark(grammar_text(), **GRAMMAR_OPTIONS, strict=True)


def test_the_grammar_cache_is_only_kept_where_no_one_else_may_write(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from oxdeai.dsl.parser import grammar_cache_file
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "mine"))
    assert str(grammar_cache_file()).startswith(str(tmp_path / "mine" / "oxdeai"))
    shared = tmp_path / "shared"
    (shared / "oxdeai").mkdir(parents=True)
    (shared / "oxdeai").chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
    assert grammar_cache_file() is False
