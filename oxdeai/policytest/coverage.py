"""Which rules, limits and effects a test file's cases exercised.

Contract: an allow rule is covered when some ALLOW names it in `allowed_by` (it decided
a call); a deny rule when some decision names it among its reasons; a limit when some
decision names it (it denied a call) or writes its state (it counted one); an effect
declaration (the ones the policy writes, not a limit's own counting) when some allowed
call — or, for `on complete`, some completion — of a tool it applies to wrote one of
its states. `percent` is covered over all, rounded down.
"""

from __future__ import annotations

from dataclasses import dataclass

from oxdeai.dsl import ast as A
from oxdeai.dsl.formatter import format_decl
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.policytest.run import Seen


@dataclass(frozen=True)
class Item:
    kind: str  # allow | deny | limit | effect
    name: str
    line: int
    covered: bool


def coverage(policy: CheckedPolicy, seen: Seen) -> list[Item]:
    allowed = {name for d in seen.decisions if d.allowed and not d.repeat for name in d.allowed_by}
    named = {n for d in seen.decisions for _, n, _ in d.reasons if n}
    written = {(d.tool, s) for d in seen.decisions if d.allowed and not d.repeat for s, _, _, _ in d.effects}
    completed = {(tool, s) for tool, effects in seen.completions for s, _, _, _ in effects}
    items = [Item(r.kind.value, r.name, r.span.line, r.name in allowed if r.kind is A.RuleKind.ALLOW
                  else r.name in named) for r in policy.rules]
    gates = {g.name: g for g in policy.gates}
    items += [Item("limit", name, g.span.line, name in named or any(s == name for _, s in written))
              for name, g in gates.items()]
    for effect in policy.effects:
        targets = {a.target for a in effect.assigns}
        if targets <= gates.keys():
            continue  # a limit's own counting: covered with the limit
        pool = completed if effect.on_complete else written
        hit = any(tool is not None and A.matches_any(effect.patterns, tool) and state in targets
                  for tool, state in pool)
        items.append(Item("effect", format_decl(effect), effect.span.line, hit))
    return items


def percent(items: list[Item]) -> int:
    return 100 if not items else sum(i.covered for i in items) * 100 // len(items)
