"""The layout's rules, checked on the source: no import cycle, the layering, module size,
no private name reached across a package, and what the light commands load."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import click

from oxdeai.cli import COMMANDS, main
from tests.conftest import ROOT

PACKAGE = ROOT / "oxdeai"
MAX_LINES = 400
LONG_ALLOWED = {"oxdeai/dsl/ast.py"}  # data: the node classes


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every oxdeai module `path` imports, at any depth (functions and TYPE_CHECKING too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("oxdeai")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oxdeai"):
            for a in node.names:  # `from oxdeai.runtime import store` names a module
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


GRAPH = {name: _imports(path) & MODULES.keys() for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Every strongly connected component with more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v]:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    GRAPH["oxdeai.dsl.ast"].add("oxdeai.dsl.types")  # types imports ast: now a circle
    try:
        assert ["oxdeai.dsl.ast", "oxdeai.dsl.types"] in _cycles()
    finally:
        GRAPH["oxdeai.dsl.ast"].discard("oxdeai.dsl.types")


def test_no_import_cycle() -> None:
    assert _cycles() == []


def _third_party(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


def test_the_layers() -> None:
    """dsl knows no engine and no solver; runtime never imports z3 or the verifier; the
    verifier reaches the runtime only through its replay; the guard sits on the runtime
    and knows no verifier; nothing below the CLI imports it; only `oxdeai mcp-proxy`
    imports an integration."""
    broken = []
    for name, deps in GRAPH.items():
        layer = name.split(".")[1] if "." in name else ""
        for dep in deps:
            target = dep.split(".")[1] if dep.count(".") else ""
            if layer == "dsl" and target in ("runtime", "verifier", "guard", "cli"):
                broken.append((name, dep))
            if layer == "guard" and target in ("verifier", "cli"):
                broken.append((name, dep))
            if layer in ("runtime", "verifier") and target == "guard":
                broken.append((name, dep))
            # optional extras: nothing depends on them but the one command that runs one
            if layer != "integrations" and target == "integrations" and name != "oxdeai.cli.mcp_proxy":
                broken.append((name, dep))
            if layer != "server" and target == "server" and name != "oxdeai.cli.serve":  # the service: only its command
                broken.append((name, dep))
            if layer == "server" and target in ("cli", "integrations"):
                broken.append((name, dep))
            if layer in ("authz", "audit") and \
                    target in ("cli", "server", "integrations", "guard", "verifier", "policytest"):
                broken.append((name, dep))
            if layer != "lsp" and target == "lsp" and name != "oxdeai.cli.lsp":
                broken.append((name, dep))
            if layer == "lsp" and target in ("runtime", "verifier", "server", "integrations", "guard", "audit", "authz"):
                broken.append((name, dep))
            if layer != "policytest" and target == "policytest" and name != "oxdeai.cli.test":
                broken.append((name, dep))
            if layer == "policytest" and target in ("cli", "server", "integrations"):
                broken.append((name, dep))
            if layer == "integrations" and target in ("verifier", "cli"):
                broken.append((name, dep))
            if layer == "runtime" and target in ("verifier", "cli"):
                broken.append((name, dep))
            if layer == "verifier" and target == "cli":
                broken.append((name, dep))
            if layer == "verifier" and target == "runtime" and name != "oxdeai.verifier.replay":
                broken.append((name, dep))
        if layer in ("dsl", "runtime", "guard", "integrations", "server", "policytest", "authz", "audit", "lsp",
                     "pep") and \
                "z3" in _third_party(MODULES[name]):
            broken.append((name, "z3"))
    assert broken == []


def test_no_module_is_over_the_size_limit() -> None:
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert {k: v for k, v in long.items() if k not in LONG_ALLOWED} == {}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_privates(paths: list[Path]) -> set[str]:
    """The private names defined in these files: functions, classes, attributes assigned."""
    out: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
                out.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
                out.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _private(node.id):
                out.add(node.id)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private(node.value):
                out.add(node.value)  # __slots__ entries
    return out


def _reach_ins(path: Path, allowed: set[str], root: Path = ROOT) -> list[str]:
    """`obj._name` on anything but self/cls, and `from m import _name`, unless allowed."""
    found = []
    label = path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in allowed:
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{label}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("oxdeai"):
            source = node.module.split(".")[1] if "." in node.module else ""
            here = label.parts
            same_package = here[0] == "oxdeai" and len(here) > 2 and here[1] == source
            found += [f"{label}:{node.lineno}: import {a.name}" for a in node.names
                      if _private(a.name) and not same_package]
    return found


def test_no_private_name_is_used_across_packages_or_from_tests() -> None:
    found = []
    for package in sorted({p.parent for p in MODULES.values()}):
        files = sorted(package.glob("*.py"))
        allowed = _defined_privates(files)
        for path in files:
            found += _reach_ins(path, allowed)
    for path in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py")):
        found += _reach_ins(path, set())
    assert found == []


def _loaded(*argv: str) -> set[str]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "oxdeai.cli", *argv], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


def test_version_and_check_load_no_solver_and_no_models() -> None:
    for argv in (["--version"], ["check", "examples/payments.oxp"], ["fmt", "--check", "examples/payments.oxp"]):
        loaded = _loaded(*argv)
        assert "oxdeai" in loaded  # the probe sees our own imports
        assert not {m for m in loaded if m == "z3" or m.startswith("pydantic") or m.startswith("oxdeai.runtime")}, argv


def test_the_guard_and_the_decision_log_need_no_optional_extra() -> None:
    """The guard (and its decision log) is core: signing and verifying load the authz
    extra (PyJWT, cryptography) only when a guard is given an issuer or an Executor is built."""
    probe = "import sys, oxdeai.guard, oxdeai.audit.log; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                cwd=ROOT).stdout.split())
    assert "oxdeai.guard.authorized" in loaded
    assert not {m for m in loaded if m.split(".")[0] in ("jwt", "cryptography")}


def test_the_command_listing_matches_the_commands() -> None:
    ctx = click.Context(main)
    for name, (_, _, short) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        assert command.get_short_help_str(limit=300) == short


def test_the_reach_in_finder_finds_reach_ins(tmp_path: Path) -> None:
    sample = tmp_path / "tests" / "sample.py"
    sample.parent.mkdir()
    sample.write_text("from oxdeai.runtime.engine import _no_state\nx = engine._plans\ny = self._ok\n")
    found = _reach_ins(sample, set(), root=tmp_path)
    assert [f.split(": ", 1)[1] for f in found] == ["import _no_state", "._plans"]


def test_the_architecture_map_names_every_module_and_only_real_ones() -> None:
    """docs/architecture.md lists each module of dsl/, runtime/, verifier/, guard/ and integrations/, and every
    file it names exists: the map stays true as modules move."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(?:[a-z_]+/)*([a-z_]+\.(?:py|lark|md))`", text))
    modules = {p.name for sub in ("dsl", "runtime", "verifier", "guard", "integrations", "server", "policytest",
                                  "authz", "audit", "lsp")
               for p in (PACKAGE / sub).glob("*.py")
               if p.name != "__init__.py"}
    assert modules - named == set()
    existing = {p.name for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts}
    assert named - existing == set()
