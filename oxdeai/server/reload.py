"""Live policy rollout for a running service: `POST /v1/policy/reload` and SIGHUP.

Contract: `Reloader.reload()` reads the policy file again and answers `(status, JSON)`:
  - the file does not compile, or `verify` finds a property violated (or, with
    `refuse_unknown`, not proved) → 409 with the problems; the old version keeps serving;
  - else the new version takes over: new decisions wait (they are not refused) while
    the decisions in flight finish on the old version, then the store rolls over
    state by state (oxdeai/runtime/rollout.py: kept, fresh, removed, and the calls in
    flight of tools whose effects changed completed `expired`), and the next decision
    is the new version's. Entries carried over that would break an invariant of the
    new version refuse the rollout before anything changes (409).
  - the same file again → 200 `{"changed": false}`.
One reload runs at a time. Verification runs in a worker thread, so decisions go on
during it; the pause is only the roll-over itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.runtime.models import canonical_json
from oxdeai.runtime.rollout import RolloutRefused, roll_over
from oxdeai.runtime.store import Horizons, MemoryStore, StateStore, StoreError
from oxdeai.runtime.store_urls import open_store
from oxdeai.server.service import Answer, Service, Serving, error
from oxdeai.server.setup import SetupError, load_policy_file


class Reloader:
    def __init__(self, service: Service, policy_path: str, store_url: str, refuse_unknown: bool = False,
                 load: Callable[[str], CheckedPolicy] | None = None) -> None:
        self.service = service
        self.policy_path = policy_path
        self.store_url = store_url
        self.refuse_unknown = refuse_unknown
        self.load = load or load_policy_file
        self._one_at_a_time = asyncio.Lock()

    def _reopen(self, policy: CheckedPolicy) -> StateStore:
        store = self.service.current.engine.store
        if isinstance(store, MemoryStore):  # the same object: its entries are the state
            store.set_horizons(Horizons.of(policy))
            return store
        return open_store(self.store_url, policy, migrate=True)

    async def reload(self) -> Answer:
        async with self._one_at_a_time:
            old = self.service.current
            try:
                new = await asyncio.to_thread(self.load, self.policy_path)
            except SetupError as exc:
                return _refused(old, [f"the policy file does not compile: {exc}"])
            if new.sha256 == old.policy.sha256:
                return 200, canonical_json({"changed": False, "sha256": new.sha256})
            from oxdeai.verifier.properties import rollout_problems  # z3 loads only when a reload verifies

            problems = await asyncio.to_thread(rollout_problems, new, self.refuse_unknown)
            if problems:
                return _refused(old, problems)
            async with self.service.paused():
                try:
                    engine, plan = await asyncio.to_thread(roll_over, old.engine, new, self._reopen)
                except RolloutRefused as exc:
                    return _refused(old, exc.problems)
                except StoreError as exc:
                    return error(503, f"the state store failed during the rollout: {str(exc)[:200]}")
                self.service.serve(Serving(new, engine))
            report: dict[str, Any] = {"changed": True, "from": old.policy.sha256, "to": new.sha256,
                                      "version": new.version, **plan.to_json()}
            self.service.log.event(event="rollout", **report)
            return 200, canonical_json(report)


def _refused(serving: Serving, problems: list[str]) -> Answer:
    return 409, canonical_json({"error": "the new version is refused; the old one keeps serving",
                                "problems": problems, "serving": serving.policy.sha256})
