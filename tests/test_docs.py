"""The Python examples in the docs run as written."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "docs" / "engine.md", ROOT / "README.md"]


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run(path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    blocks = re.findall(r"```python\n(.*?)```", open(path, encoding="utf-8").read(), re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(path), "exec"), {})  # noqa: S102 - our own documentation
