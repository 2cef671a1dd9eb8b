"""Loading the service's policy file: what starting the service and a reload share.

Contract: `load_policy_file(path)` is the checked policy, or `SetupError` whose message
is the file's error diagnostics, rendered as `oxdeai check` renders them.
"""

from __future__ import annotations

from oxdeai.dsl.diagnostics import render
from oxdeai.dsl.policy import CheckedPolicy, compile_source, read_source


class SetupError(Exception):
    """The service cannot start (or a reload cannot read its file); the message says where and how to fix it."""


def load_policy_file(path: str) -> CheckedPolicy:
    text, diagnostics = read_source(path)
    policy = None
    if text is not None:
        policy, diagnostics = compile_source(text, path)
    if policy is None:
        raise SetupError("\n".join(render(d, path, text or "") for d in diagnostics if d.is_error))
    return policy
