"""`oxdeai test [PATH...] [--format text|json|junit] [--coverage] [--threshold N]`: run
policy unit tests (`*.test.json`; docs/testing-policies.md).

PATH is a test file or a directory searched for `*.test.json` (default: the current
directory). Exit 0 when every case passes (and coverage meets `--threshold`); 1 when a
case fails, a policy has errors, or coverage is below the threshold; 2 when a test file
cannot be used (not found, malformed) or no test file is found.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click

from oxdeai.cli.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, compile_for_command, fail_usage


def _test_files(paths: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for raw in paths or (".",):
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.test.json") if ".venv" not in p.parts)
        elif path.is_file():
            found.append(path)
        else:
            fail_usage(f"no such file or directory `{raw}`")
    if not found:
        fail_usage("no test files (`*.test.json`) found")
    return found


@click.command(name="test")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "junit"]), default="text", show_default=True)
@click.option("--coverage", "with_coverage", is_flag=True, help="Report which rules, limits and effects no case exercised.")
@click.option("--threshold", type=click.IntRange(0, 100), default=None,
              help="Fail when coverage (percent) is below this; implies --coverage.")
def test_command(paths: tuple[str, ...], fmt: str, with_coverage: bool, threshold: int | None) -> None:
    """Run policy unit tests (*.test.json), with rule coverage."""
    from oxdeai.policytest import report
    from oxdeai.policytest.coverage import coverage, percent
    from oxdeai.policytest.run import Seen, run_case
    from oxdeai.policytest.spec import SpecError, load_tests

    reports, unusable = [], False
    for path in _test_files(paths):
        try:
            spec = load_tests(path)
        except SpecError as exc:
            reports.append(report.FileReport(str(path), error=str(exc)))
            unusable = True
            continue
        policy_path = path.parent / spec.policy
        if not policy_path.is_file():
            reports.append(report.FileReport(str(path), error=f"no policy file `{policy_path}`"))
            unusable = True
            continue
        policy, diagnostics, _ = compile_for_command(str(policy_path))
        if policy is None:
            reports.append(report.FileReport(str(path), error=f"{policy_path} does not compile: "
                                             + "; ".join(d.message for d in diagnostics if d.is_error)))
            continue
        seen = Seen()
        verdicts = functools.cache(lambda p=policy: _verify(p))
        file_report = report.FileReport(str(path), [run_case(policy, case, seen, verdicts) for case in spec.cases])
        if with_coverage or threshold is not None:
            file_report.items = coverage(policy, seen)
        reports.append(file_report)
    click.echo({"text": report.text, "json": report.as_json, "junit": report.junit}[fmt](reports))
    below = threshold is not None and any(r.items is not None and percent(r.items) < threshold for r in reports)
    failed = any(r.failed or r.error for r in reports)
    sys.exit(EXIT_USAGE if unusable else EXIT_PROBLEM if failed or below else EXIT_OK)


def _verify(policy: Any) -> Any:
    from oxdeai.verifier.properties import verify_policy
    return verify_policy(policy)
