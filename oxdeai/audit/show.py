"""The decision log's records as table rows, for `oxdeai audit show`.

Contract: `rows(paths, chain)` reads the files in the order given and returns one dict
per chain line it can read (`chain` shortened to 8 hex digits, `n`, `event`, `caller`,
`tool`, `result`, `reasons`, `id`); lines it cannot read are rows with `event`
"unreadable". It checks nothing: `audit verify` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oxdeai.audit.chain import unverified_claims


def rows(paths: list[str], chain: str | None = None) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for raw in Path(path).read_bytes().splitlines():
            try:
                line = json.loads(raw)
                record = line["record"]
                row = {"chain": str(line["chain"])[:8], "n": line["n"], **_describe(record)}
            except (ValueError, KeyError, TypeError):
                out.append({"event": "unreadable"})
                continue
            if chain is None or str(line["chain"]).startswith(chain):
                out.append(row)
    return out


def _describe(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event", "")
    row: dict[str, Any] = {"event": event, "caller": record.get("caller", "")}
    if event == "decision":
        decision = record.get("decision", {})
        row.update(tool=decision.get("tool", ""), result=decision.get("decision", ""),
                   reasons=",".join(r.get("code", "") for r in decision.get("reasons", [])),
                   id=decision.get("decision_id", ""))
    elif event == "completion":
        completion = record.get("completion", {})
        row.update(result=completion.get("outcome", ""), id=completion.get("decision_id", ""))
    elif event == "checkpoint":
        claims = unverified_claims(str(record.get("checkpoint", "")))
        row.update(result="final" if claims.get("final") else "signed", reasons=f"count={claims.get('count')}")
    elif event == "dropped":
        row.update(result=f"{record.get('dropped')} records dropped")
    return row
