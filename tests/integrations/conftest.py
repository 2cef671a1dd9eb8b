"""Outside CI a missing framework skips its tests (`pip install -e '.[dev]'` brings them);
under CI=true a missing one is an error at collection, never a silent skip."""

from __future__ import annotations

import importlib
import os

if os.environ.get("CI") == "true":
    for module in ("agents", "langchain_core", "langgraph", "mcp"):
        importlib.import_module(module)
