"""The test file: JSON, one file per policy, `NAME.test.json` next to `NAME.oxp`.

Contract: `load_tests(path)` validates the file against the models below (unknown
fields refused, so a misspelt expectation is an error, not a silent pass) and
answers the `TestFile`, or raises `SpecError` naming the place in the file. JSON, not YAML: it is
the format requests, traces and state files already have (a case's request is the
`oxdeai eval --request` JSON as it is), and it has no implicit types (YAML reads an
agent id `no` as false).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from oxdeai.runtime.strict_json import loads_strict


class SpecError(ValueError):
    """The test file cannot be used; the message names the place and the fix."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EffectExpect(Strict):
    state: str
    key: str | None = None
    before: int | bool
    after: int | bool


class Expect(Strict):
    """What one decision (or completion) must be. Only the fields given are compared."""

    decision: Literal["ALLOW", "DENY"] | None = None
    codes: list[str] | None = None  # the reason codes, in order
    rules: list[str] | None = None  # ALLOW: the allow rules that decided; DENY: the names in the reasons
    effects: list[EffectExpect] | None = None
    repeat: bool | None = None
    error: str | None = None  # a completion: a text its error must contain


class Case(Strict):
    name: str = Field(min_length=1)
    description: str | None = None
    state: dict[str, Any] | None = None  # a starting state file
    request: dict[str, Any] | None = None
    trace: list[dict[str, Any]] | None = None  # requests and {"complete": N, "outcome", "time"} lines
    expect: Expect | list[Expect | None] | None = None  # one per trace line; null: not compared
    verify: dict[str, Literal["proved", "violated", "unknown"]] | None = None  # property -> status

    @model_validator(mode="after")
    def one_kind(self) -> Case:
        given = [k for k in ("request", "trace", "verify") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `request`, `trace` or `verify`")
        if self.request is not None and not isinstance(self.expect, Expect):
            raise ValueError("a `request` case needs `expect`: an object")
        if self.trace is not None and not (isinstance(self.expect, list) and len(self.expect) == len(self.trace)):
            raise ValueError("a `trace` case needs `expect`: a list with one entry (or null) per trace line")
        return self


class TestFile(Strict):
    policy: str  # the policy file, relative to the test file
    cases: list[Case] = Field(min_length=1)

    __test__ = False  # not a pytest class


def load_tests(path: Path) -> TestFile:
    try:
        return TestFile.model_validate(loads_strict(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read it: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if not _union_branch(p))
        raise SpecError(f"{where or 'the file'}: {first.get('msg', 'invalid')}") from None
    except ValueError as exc:
        raise SpecError(f"not valid JSON: {exc}") from None


def _union_branch(part: object) -> bool:
    """pydantic names the branch of a union it tried (`Expect`, `list[...]`): not a place in the file."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)
