"""oxdeai: deterministic execution authorization for AI agents.

An agent proposes a tool call; before any side effect, the engine decides ALLOW
or DENY from (request, state, policy). Policies are `.oxp` files.

The public names are loaded on first use (PEP 562): importing `oxdeai.dsl` or
asking for `oxdeai --version` loads neither the engine, pydantic nor z3.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "CheckedPolicy": "oxdeai.dsl.policy",
    "PolicyError": "oxdeai.dsl.policy",
    "load_policy": "oxdeai.dsl.policy",
    "CompletionError": "oxdeai.runtime.engine",
    "Engine": "oxdeai.runtime.engine",
    "Decision": "oxdeai.runtime.models",
    "open_store": "oxdeai.runtime.store_urls",
    "Guard": "oxdeai.guard.core",
    "Denied": "oxdeai.guard.answers",
}

__all__ = ["CheckedPolicy", "CompletionError", "Decision", "Denied", "Engine", "Guard", "PolicyError", "__version__",
           "load_policy", "open_store"]  # the names of _EXPORTS, and the version

if TYPE_CHECKING:
    from oxdeai.dsl.policy import CheckedPolicy, PolicyError, load_policy
    from oxdeai.guard.answers import Denied
    from oxdeai.guard.core import Guard
    from oxdeai.runtime.engine import CompletionError, Engine
    from oxdeai.runtime.models import Decision
    from oxdeai.runtime.store_urls import open_store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'oxdeai' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__
