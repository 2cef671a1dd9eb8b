"""The reports of `oxdeai test`: text for people, JSON and JUnit XML for CI.

Contract: `FileReport` is one test file's outcome (its cases, or the error that kept it
from running, and its coverage items when asked). `text`, `as_json` and `junit` render
a list of them; `junit` is the JUnit XML schema CI systems read (`testsuites` >
`testsuite` per file > `testcase` per case, a `failure` per failing case, an `error`
for a file that could not run).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from oxdeai.policytest.coverage import Item, percent
from oxdeai.policytest.run import CaseResult


@dataclass
class FileReport:
    path: str
    cases: list[CaseResult] = field(default_factory=list)
    error: str | None = None
    items: list[Item] | None = None  # coverage, when asked for

    @property
    def failed(self) -> int:
        return sum(not c.passed for c in self.cases)


def text(reports: list[FileReport]) -> str:
    out = []
    for r in reports:
        if r.error is not None:
            out.append(f"ERROR {r.path}: {r.error}")
            continue
        for c in r.cases:
            out.append(f"{'PASS' if c.passed else 'FAIL'} {r.path}: {c.name}")
            out += [f"    {f}" for f in c.failures]
        if r.items is not None:
            out.append(f"coverage {r.path}: {percent(r.items)}% ({sum(i.covered for i in r.items)} of "
                       f"{len(r.items)} rules, limits and effects)")
            out += [f"    not covered: {i.kind} `{i.name}` (line {i.line})" for i in r.items if not i.covered]
    cases = [c for r in reports for c in r.cases]
    errors = sum(r.error is not None for r in reports)
    out.append(f"{sum(c.passed for c in cases)} passed, {sum(not c.passed for c in cases)} failed"
               + (f", {errors} file(s) could not run" if errors else ""))
    return "\n".join(out)


def as_json(reports: list[FileReport]) -> str:
    files = []
    for r in reports:
        entry: dict[str, object] = {"path": r.path, "error": r.error,
                                    "cases": [{"name": c.name, "passed": c.passed, "failures": c.failures}
                                              for c in r.cases]}
        if r.items is not None:
            entry["coverage"] = {"percent": percent(r.items), "items": [
                {"kind": i.kind, "name": i.name, "line": i.line, "covered": i.covered} for i in r.items]}
        files.append(entry)
    return json.dumps({"files": files}, indent=2, ensure_ascii=False)


def junit(reports: list[FileReport]) -> str:
    root = ET.Element("testsuites", name="oxdeai test", tests=str(sum(len(r.cases) for r in reports)),
                      failures=str(sum(r.failed for r in reports)),
                      errors=str(sum(r.error is not None for r in reports)))
    for r in reports:
        suite = ET.SubElement(root, "testsuite", name=r.path, tests=str(len(r.cases)), failures=str(r.failed),
                              errors="1" if r.error is not None else "0", skipped="0")
        if r.error is not None:
            case = ET.SubElement(suite, "testcase", name="(the test file)", classname=r.path)
            ET.SubElement(case, "error", message=r.error[:200]).text = r.error
        for c in r.cases:
            case = ET.SubElement(suite, "testcase", name=c.name, classname=r.path)
            if not c.passed:
                ET.SubElement(case, "failure", message=c.failures[0][:200]).text = "\n".join(c.failures)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
