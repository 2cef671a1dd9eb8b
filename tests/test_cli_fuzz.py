"""No command prints a Python traceback, whatever it is given: malformed policies,
requests, traces, state files and store URLs. Every run ends with an exit code of the
CLI's own (0, 1, 2, 3) and, for an error, a message of its own."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxdeai.cli import main
from tests.conftest import EXAMPLES

PAYMENTS = (EXAMPLES / "payments.oxp").read_text(encoding="utf-8")
SETTINGS = {"deadline": None, "suppress_health_check": list(HealthCheck), "max_examples": 100}

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8) | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12)
REQUEST_KEYS = st.sampled_from(["tool", "args", "agent", "time", "nonce", "idempotency_key", "complete", "outcome"])
REQUESTS = st.one_of(
    JSON_VALUES.map(json.dumps),
    st.dictionaries(REQUEST_KEYS, JSON_VALUES, max_size=6).map(json.dumps),
    st.text(max_size=40),
    st.sampled_from(['{"a":1,"a":2}', "null", "[]", '{"tool":"payments.transfer","args":{"amount":1e999}}',
                     '{"time": 99999999999999999999999}', "{\"tool\": \"\\ud800\"}", "NaN", "1" * 5000,
                     "[" * 5000 + "]" * 5000]),
)
STORES = st.one_of(st.sampled_from(["memory://", "sqlite:///", "sqlite:///{dir}/s.db", "redis://[::1/0",
                                    "redis://127.0.0.1:1/0?timeout=0.2", "redis://127.0.0.1:99999/0",
                                    "redis://x:y@/0?timeout=nan", "unix://", "sqlite:////proc/nope/x.db",
                                    "sqlite:///{dir}", "mongodb://x"]),
                   st.text(max_size=20))


def mutated_policy() -> st.SearchStrategy[str]:
    """The payments example with a few characters replaced, cut short, or repeated."""
    def mutate(edits: list[tuple[int, str]], cut: int | None) -> str:
        text = list(PAYMENTS)
        for at, ch in edits:
            text[at % len(text)] = ch
        out = "".join(text)
        return out[:cut] if cut is not None else out
    return st.builds(mutate, st.lists(st.tuples(st.integers(0, 10**6), st.characters()), max_size=4),
                     st.none() | st.integers(0, len(PAYMENTS)))


def run(*args: str) -> None:
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        (args, result.output[-2000:], repr(result.exception))
    assert result.exit_code in (0, 1, 2, 3), (args, result.exit_code, result.output[-2000:])
    assert "Traceback" not in result.output, (args, result.output[-2000:])


@settings(**SETTINGS)
@given(mutated_policy())
def test_check_fmt_verify_never_crash_on_a_damaged_policy(text: str) -> None:
    with tempfile.TemporaryDirectory() as where:
        path = Path(where) / "fuzz.oxp"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        for command in (["check"], ["fmt", "--check"], ["fmt"], ["verify", "--budget", "200000"],
                        ["diff", str(path), "--budget", "200000"]):
            run(*command, str(path))


@settings(**SETTINGS)
@given(REQUESTS, st.lists(REQUESTS, max_size=4), STORES, st.one_of(st.none(), REQUESTS))
def test_eval_never_crashes(request: str, trace: list[str], store: str, state: str | None) -> None:
    with tempfile.TemporaryDirectory() as where:
        policy = Path(where) / "p.oxp"
        policy.write_text(PAYMENTS, encoding="utf-8")
        url = store.replace("{dir}", where)
        extra = ["--state", state] if state is not None else []
        run("eval", str(policy), "--store", url, "--request", request, *extra)
        (Path(where) / "t.jsonl").write_text("\n".join(trace), encoding="utf-8", errors="surrogatepass")
        run("eval", str(policy), "--trace", f"@{where}/t.jsonl", *extra)


@settings(**SETTINGS)
@given(STORES, st.sampled_from(["show", "export", "get", "set", "import"]), st.lists(st.text(max_size=12), max_size=3),
       REQUESTS)
def test_state_never_crashes(store: str, command: str, words: list[str], state: str) -> None:
    with tempfile.TemporaryDirectory() as where:
        policy = Path(where) / "p.oxp"
        policy.write_text(PAYMENTS, encoding="utf-8")
        url = store.replace("{dir}", where)
        args = {"import": [state], "set": words or ["daily_spend"], "get": words or ["daily_spend"]}.get(command, [])
        run("state", command, "--store", url, "--policy", str(policy), *args)


def test_a_damaged_store_file_never_crashes(tmp_path: Path) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text(PAYMENTS, encoding="utf-8")
    request = json.dumps({"tool": "ledger.read", "args": {"account": "a"}, "nonce": "n", "agent": {
        "id": "a", "role": "finance", "depth": 0}, "time": 1_764_000_000})
    for index, garbage in enumerate([b"", b"not a database", b"SQLite format 3\x00" + b"\xff" * 5000]):
        path = tmp_path / f"s{index}.db"
        path.write_bytes(garbage)
        for args in (["eval", str(policy), "--store", f"sqlite:///{path}", "--request", request],
                     ["state", "show", "--store", f"sqlite:///{path}", "--policy", str(policy)],
                     ["state", "export", "--store", f"sqlite:///{path}", "--policy", str(policy)]):
            run(*args)
