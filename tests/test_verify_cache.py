"""`verify`'s answers kept across runs: an unchanged file answers from the cache without
the solver, and anything that could change the answer is a miss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oxdeai.dsl import ast as A
from oxdeai.verifier import cache
from oxdeai.verifier.results import WALL_CLOCK, Result
from tests.conftest import EXAMPLES, ROOT

PROBE = ("import runpy, sys; sys.argv = ['oxdeai'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('oxdeai.cli', run_name='__main__')\n"
         "finally:\n    print('Z3-LOADED' if 'z3' in sys.modules else 'NO-Z3', file=sys.stderr)\n")


def verify(tmp_path: Path, *args: str) -> tuple[int, str, bool]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", PROBE, "verify", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600, check=False)
    return done.returncode, done.stdout, "Z3-LOADED" in done.stderr


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "oxdeai" / "verify").glob("*.json"))


def test_an_unchanged_file_answers_from_the_cache_without_the_solver(tmp_path: Path) -> None:
    policy = tmp_path / "shop.oxp"
    policy.write_text((EXAMPLES / "shop.oxp").read_text(encoding="utf-8"))
    first = verify(tmp_path, str(policy))
    assert first[0] == 0 and first[2]  # verified: the solver ran
    second = verify(tmp_path, str(policy))
    assert second[:2] == first[:2] and not second[2]  # the same answer, no z3 loaded
    assert len(entries(tmp_path)) == 1
    fresh = verify(tmp_path, "--no-cache", str(policy))
    assert fresh[:2] == first[:2] and fresh[2]


def test_a_changed_text_or_budget_is_a_miss_and_a_damaged_entry_is_never_an_answer(tmp_path: Path) -> None:
    policy = tmp_path / "p.oxp"
    policy.write_text('policy p\ntool t(a: int[0..9])\nallow r on t when args.a < 5\nassert small: never allow t when args.a > 4\n')
    assert verify(tmp_path, str(policy))[0] == 0
    policy.write_text(policy.read_text().replace("args.a < 5", "args.a < 6"))  # now violated
    code, out, loaded = verify(tmp_path, str(policy))
    assert code == 1 and "violated" in out and loaded
    assert verify(tmp_path, "--budget", "2000000", str(policy))[2]  # another budget: verified again
    assert len(entries(tmp_path)) == 3
    for entry in entries(tmp_path):
        entry.write_text(json.dumps({"format": cache.FORMAT, "results": [{"status": "proved"}]}))
    code, out, loaded = verify(tmp_path, str(policy))
    assert code == 1 and "violated" in out and loaded  # a damaged entry: verified afresh, and the truth told


def test_what_a_wall_clock_decided_is_never_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    span = A.Span(1, 1, 1, 5)
    timed_out = Result("p", "invariant", "unknown", span, reason=f"{WALL_CLOCK} (raise `--timeout`)")
    cache.store("policy p\n", 1, 1.0, [timed_out])
    assert cache.lookup("policy p\n", 1, 1.0) is None
    kept = Result("p", "invariant", "proved", span, time_ms=3)
    cache.store("policy p\n", 1, 1.0, [kept])
    assert cache.lookup("policy p\n", 1, 1.0) == [kept]
    monkeypatch.setattr(cache, "code_digest", lambda: "another oxdeai")  # other code: another key
    assert cache.lookup("policy p\n", 1, 1.0) is None


def test_a_cache_others_may_write_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "oxdeai" / "verify").mkdir(parents=True)
    (tmp_path / "oxdeai" / "verify").chmod(0o777)
    kept = Result("p", "invariant", "proved", A.Span(1, 1, 1, 5))
    cache.store("policy p\n", 1, 1.0, [kept])
    assert cache.lookup("policy p\n", 1, 1.0) is None and list((tmp_path / "oxdeai" / "verify").iterdir()) == []
