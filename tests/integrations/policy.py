"""The policy every guard and framework test drives: examples/shop.oxp (a budgeted,
idempotent charge refunded on failure, a capped slow tool, mail with a deny rule)."""

import importlib.util
import sys
from types import ModuleType

from tests.conftest import EXAMPLES

POLICY = (EXAMPLES / "shop.oxp").read_text(encoding="utf-8")
AGENT = {"id": "agent-1", "tier": "pro"}
T0 = 1_764_000_000


def load_example(name: str) -> ModuleType:
    """examples/agents/NAME.py as a module: the tests drive the examples' own scripted models."""
    spec = importlib.util.spec_from_file_location(f"oxdeai_example_{name}", EXAMPLES / "agents" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the example's annotations through it
    spec.loader.exec_module(module)
    return module
