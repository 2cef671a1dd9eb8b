"""SARIF 2.1.0 for GitHub code scanning: one result per violated or unknown property.

Contract: rule ids are stable (`oxdeai/<kind or check>`), every result has a
physical location in the policy file and a partial fingerprint that survives
edits elsewhere in the file (policy name, property and detail, not line numbers).
"""

from __future__ import annotations

import hashlib
from typing import Any

from oxdeai import __version__
from oxdeai.verifier.checks import CHECKS
from oxdeai.verifier.results import Result

RULES = {
    "oxdeai/invariant": "An invariant of the policy state is not proved inductive",
    "oxdeai/assertion": "An assertion about decisions does not hold",
    **{f"oxdeai/{check.name}": check.summary for check in CHECKS.values()},
}


def rule_id(result: Result) -> str:
    return f"oxdeai/{result.kind}" if result.kind != "check" else f"oxdeai/{result.property}"


def to_sarif(files: list[tuple[str, str, list[Result]]]) -> dict[str, Any]:
    """`files` holds (path, policy name, results) for each verified file."""
    ids = list(RULES)
    results = []
    for path, policy_name, file_results in files:
        for r in file_results:
            if r.status == "proved":
                continue
            text = f"{r.property}: {r.status}" + (f" — {r.reason}" if r.reason else "")
            if r.counterexample and "request" in r.counterexample:
                text += f"\ncounterexample request: {r.counterexample['request']}"
            identity = f"{policy_name}:{r.kind}:{r.property}:{r.detail or ''}"
            results.append({
                "ruleId": rule_id(r),
                "ruleIndex": ids.index(rule_id(r)),
                "level": "error" if r.status == "violated" else "warning",
                "message": {"text": text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": path},
                    "region": {"startLine": max(r.span.line, 1), "startColumn": max(r.span.column, 1)},
                }}],
                "partialFingerprints": {"oxdeaiProperty/v1": hashlib.sha256(identity.encode()).hexdigest()[:32]},
            })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "oxdeai",
                "version": __version__,
                "informationUri": "https://github.com/oxdeai/oxdeai",
                "rules": [{"id": rid, "name": rid.split("/")[1], "shortDescription": {"text": text},
                           "defaultConfiguration": {"level": "error"}} for rid, text in RULES.items()],
            }},
            "results": results,
        }],
    }
