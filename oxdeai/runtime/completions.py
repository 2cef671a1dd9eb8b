"""What a completion writes, and how a completion that cannot be applied is reported.

Contract: `completion_writes` gives the writes of a call's `on complete` effects,
(state, key) -> (before, after), each declaration whole or not at all: one that
reads or writes a windowed state whose window has passed since the call is
dropped (its entries now belong to a later window), and so is one that would take
an int outside the request domain. `ctx` reads entries at the completion's time
and shows expressions the original call's args, agent and time.
"""

from __future__ import annotations

from typing import Any

from oxdeai.dsl.types import HOST_OUTCOMES, is_time
from oxdeai.runtime.entries import effect_writes, out_of_range
from oxdeai.runtime.interpreter import Ctx
from oxdeai.runtime.plans import EffectPlan, StatePlan
from oxdeai.runtime.store import EntryKey, StoreError


class CompletionError(Exception):
    """A completion that cannot be applied; nothing was changed."""


class CompletionStoreError(CompletionError, StoreError):
    """The store failed during a completion: nothing was applied, and it may be retried.
    Both `except CompletionError` and `except StoreError` catch it."""


def check_completion(outcome: Any, time: Any) -> None:
    """A completion's outcome and time as a host reports them; `CompletionError` if unfit."""
    if outcome not in HOST_OUTCOMES:
        raise CompletionError(f"outcome must be one of {', '.join(HOST_OUTCOMES)}, not {outcome!r}")
    if time is not None and not is_time(time):
        raise CompletionError(f"time must be an integer number of Unix seconds from 0 to 2^53 − 1, not {time!r}")


def completion_writes(on_complete: tuple[EffectPlan, ...], states: dict[str, StatePlan], ctx: Ctx,
                      call_time: int, now: int) -> dict[EntryKey, tuple[Any, Any]]:
    live = tuple(e for e in on_complete if all(now // w == call_time // w for w in e.windows))
    writes = effect_writes(live, states, ctx) if live else {}
    if out_of_range(writes):  # dropped whole, as a declaration whose window passed: the state stays as it was
        writes = effect_writes(tuple(e for e in live if not out_of_range(effect_writes((e,), states, ctx))),
                               states, ctx)
    return writes
