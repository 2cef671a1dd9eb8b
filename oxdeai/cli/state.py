"""`oxdeai state show|get|set|export|import --store URL --policy FILE`: the operator's view of a store."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, fail_usage, load_for_command, parse_json, read_argument
from oxdeai.runtime.engine import Engine
from oxdeai.runtime.state_files import StateFileError
from oxdeai.runtime.store import StoreError
from oxdeai.runtime.store_urls import open_store

STORE = click.option("--store", "store_url", required=True,
                     help="The durable store: sqlite:///PATH or redis://[:PASSWORD@]HOST:PORT/DB (rediss://, unix://).")
POLICY = click.option("--policy", "policy_path", required=True, help="The policy the store belongs to.")


def _engine(store_url: str, policy_path: str, migrate: bool = False) -> Engine:
    if store_url.startswith("memory:"):
        fail_usage("`oxdeai state` works on a durable store (sqlite:///PATH or redis://...): memory:// holds "
                   "nothing between two commands, so a change would be lost as it is made")
    policy = load_for_command(policy_path)
    try:
        return Engine(policy, store=open_store(store_url, policy, migrate))
    except StoreError as exc:
        fail_usage(str(exc))
        raise  # unreachable: fail_usage exits


def _exported(engine: Engine) -> dict[str, Any]:
    try:
        return engine.export_state()
    except StoreError as exc:
        fail_usage(str(exc))
        raise  # unreachable: fail_usage exits


@click.group()
def state() -> None:
    """Inspect and change the state a store holds (budgets, counters, kill switches)."""


@state.command()
@STORE
@POLICY
def show(store_url: str, policy_path: str) -> None:
    """Every entry, one per line."""
    engine = _engine(store_url, policy_path)
    for name, value in sorted(_exported(engine).items()):
        if isinstance(value, dict) and "value" not in value:
            for key, entry in sorted(value.items()):
                click.echo(f"{name}[{key}] = {json.dumps(entry, ensure_ascii=False)}")
        else:
            click.echo(f"{name} = {json.dumps(value, ensure_ascii=False)}")
    sys.exit(EXIT_OK)


@state.command()
@STORE
@POLICY
@click.argument("name")
@click.argument("key", required=False, default="")
def get(store_url: str, policy_path: str, name: str, key: str) -> None:
    """One entry's value as the next request would read it (NAME, and KEY for a keyed state)."""
    engine = _engine(store_url, policy_path)
    if name not in engine.policy.states:
        fail_usage(f"`{name}` is not a state of the policy")
    try:
        stored = engine.store.entries().get((name, key))
    except StoreError as exc:
        fail_usage(str(exc))
    click.echo(json.dumps(stored.value if stored else engine.policy.states[name].init.value))
    sys.exit(EXIT_OK)


@state.command(name="set")
@STORE
@POLICY
@click.argument("name")
@click.argument("args", nargs=-1, required=True)
@click.option("--time", "at", type=int, default=None, help="The write time (default: now).")
def set_entry(store_url: str, policy_path: str, name: str, args: tuple[str, ...], at: int | None) -> None:
    """Set NAME [KEY] VALUE, e.g. `set halted true` or `set daily_spend agent-7 0`."""
    engine = _engine(store_url, policy_path)
    decl = engine.policy.states.get(name)
    if decl is None:
        fail_usage(f"`{name}` is not a state of the policy")
    assert decl is not None
    if len(args) != (2 if decl.key else 1):
        fail_usage(f"give {'KEY VALUE' if decl.key else 'VALUE'} for state `{name}`")
    key, raw = (args[0], args[1]) if decl.key else ("", args[0])
    value: Any = parse_json(raw, "VALUE")
    if type(value) is not type(decl.init.value):
        fail_usage(f"`{name}` holds {type(decl.init.value).__name__} values")
    when = at if at is not None else engine.clock()

    try:
        engine.set_entry(name, key, value, when)
    except (StoreError, StateFileError) as exc:
        fail_usage(str(exc))
    click.echo(f"{name}{f'[{key}]' if key else ''} = {json.dumps(value)}")
    sys.exit(EXIT_OK)


@state.command(name="export")
@STORE
@POLICY
def export_state(store_url: str, policy_path: str) -> None:
    """The state-file JSON of every entry."""
    click.echo(json.dumps(_exported(_engine(store_url, policy_path)), indent=2, sort_keys=True,
                          ensure_ascii=False))
    sys.exit(EXIT_OK)


@state.command(name="import")
@STORE
@POLICY
@click.argument("source")
@click.option("--migrate", is_flag=True, help="Adopt a store written by another version of the policy.")
def import_state(store_url: str, policy_path: str, source: str, migrate: bool) -> None:
    """Replace every entry with a state file (JSON, or @file)."""
    engine = _engine(store_url, policy_path, migrate)
    try:
        engine.import_state(parse_json(read_argument(source, "state"), "the state file"))
    except StateFileError as exc:
        fail_usage(f"the state file does not fit the policy: {exc}")
    except StoreError as exc:
        fail_usage(str(exc))
    click.echo("imported")
    sys.exit(EXIT_OK)


@state.command(name="rollout")
@STORE
@click.option("--from", "old_path", required=True, help="The version of the policy the store was written by.")
@click.option("--policy", "new_path", required=True, help="The new version to roll the store over to.")
@click.option("--refuse-unknown", is_flag=True, help="Refuse a new version with any property unknown.")
def rollout(store_url: str, old_path: str, new_path: str, refuse_unknown: bool) -> None:
    """Roll the store over to a new version of its policy, state by state (exit 1: refused)."""
    from oxdeai.runtime.rollout import RolloutRefused, roll_over
    from oxdeai.verifier.properties import rollout_problems

    old_engine = _engine(store_url, old_path)
    new = load_for_command(new_path)
    problems = rollout_problems(new, refuse_unknown)
    try:
        if problems:
            raise RolloutRefused(problems)
        engine, plan = roll_over(old_engine, new, lambda policy: open_store(store_url, policy, migrate=True))
    except RolloutRefused as exc:
        click.echo(json.dumps({"refused": exc.problems}, indent=2, ensure_ascii=False))
        sys.exit(EXIT_PROBLEM)
    except StoreError as exc:
        fail_usage(str(exc))
    click.echo(json.dumps({"from": old_engine.policy.sha256, "to": engine.policy.sha256, **plan.to_json()},
                          indent=2, ensure_ascii=False))
    sys.exit(EXIT_OK)
