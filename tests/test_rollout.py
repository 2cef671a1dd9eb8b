"""Rolling a store over to a new version of its policy: what carries over, what starts fresh."""

from __future__ import annotations

import json
from pathlib import Path

from oxdeai import load_policy
from oxdeai.runtime.rollout import plan_rollout
from tests.conftest import EXAMPLES, run_cli

SHOP = (EXAMPLES / "shop.oxp").read_text()
LIMIT = "limit budget on pay.charge: sum args.amount per agent.id every 1d <= 100"


def _plan(new_text: str) -> dict[str, list[str]]:
    return plan_rollout(load_policy(SHOP), load_policy(new_text)).to_json()


def test_the_same_meaning_carries_over_and_a_bound_is_not_a_meaning() -> None:
    assert _plan(SHOP) == {"kept": ["spent", "budget", "slots"], "fresh": [], "removed": [], "changed_tools": []}
    assert _plan(SHOP.replace("<= 100", "<= 500"))["kept"] == ["spent", "budget", "slots"]


def test_a_new_key_window_type_or_amount_is_a_new_meaning() -> None:
    assert _plan(SHOP.replace(LIMIT, LIMIT.replace("per agent.id", "per (agent.id, args.to)")))["fresh"] == ["budget"]
    window = _plan(SHOP.replace("state spent: int = 0 per agent.id every 1d", "state spent: int = 0 per agent.id every 1h"))
    assert window["fresh"] == ["spent"] and window["changed_tools"] == ["pay.charge"]  # it writes `spent`
    assert _plan(SHOP.replace(LIMIT, LIMIT.replace("sum args.amount", "count")))["fresh"] == ["budget"]
    removed = _plan(SHOP.replace("limit slots on pay.slow: concurrent per agent.id <= 2 lease 1h\n", ""))
    assert removed["removed"] == ["slots"] and removed["changed_tools"] == ["pay.slow"]


def test_state_rollout_offline(tmp_path: Path) -> None:
    old, new = tmp_path / "old.oxp", tmp_path / "new.oxp"
    old.write_text(SHOP)
    new.write_text(SHOP.replace("<= 100", "<= 200").replace("every 1d\nlimit", "every 1h\nlimit"))
    store = f"sqlite:///{tmp_path / 'state.db'}"
    assert run_cli("state", "set", "spent", "agent-1", "40", "--time", "1764000000", "--store", store,
                   "--policy", str(old))[0] == 0
    assert run_cli("state", "set", "budget", "agent-1", "40", "--time", "1764000000", "--store", store,
                   "--policy", str(old))[0] == 0
    assert run_cli("state", "show", "--store", store, "--policy", str(new))[0] == 2  # bound to the old version
    code, out = run_cli("state", "rollout", "--store", store, "--from", str(old), "--policy", str(new))
    report = json.loads(out)
    assert code == 0 and report["kept"] == ["budget", "slots"] and report["fresh"] == ["spent"], out
    code, out = run_cli("state", "export", "--store", store, "--policy", str(new))
    assert code == 0 and json.loads(out) == {"budget": {"agent-1": {"value": 40, "written": 1764000000}}}
    code, out = run_cli("state", "rollout", "--store", store, "--from", str(new), "--policy", str(old))
    assert code == 0  # and back: `spent` starts fresh again, `budget` carries over
