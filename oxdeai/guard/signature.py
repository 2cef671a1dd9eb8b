"""Does a Python tool function take exactly the parameters its `.oxp` declaration has?

Contract: `check_signature(fn, tool)` returns nothing when every declared parameter
is a parameter of `fn` and the other way round, each annotated type (where there is
an annotation) is the declared one (`int` for int and int ranges, `bool`, `str` for
string, `str` or `Literal[...]` of exactly the declared values for an enum), and a
parameter is optional in `fn` only where the declaration gives it a default. Else
it raises `ToolMismatch` naming every difference. The guard always calls the tool
with the arguments the engine decided on (declared defaults filled in), so a
default in `fn` is never used for a guarded call.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from oxdeai.dsl import ast as A


class ToolMismatch(TypeError):
    """A tool function and its `.oxp` declaration disagree; raised when the guard is built."""


def check_signature(fn: Callable[..., Any], tool: A.ToolDecl, skip: tuple[str, ...] = ()) -> None:
    """`skip`: leading parameters a framework supplies itself (e.g. a run context)."""
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolMismatch(f"`{tool.name}`: cannot read the parameters of {fn!r}: {exc}") from exc
    params = {name: p for name, p in signature.parameters.items() if name not in skip}
    problems = []
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            problems.append(f"`{name}` collects extra arguments: declare every parameter by name")
    declared = {f.name: f for f in tool.params}
    for name in declared.keys() - params.keys():
        problems.append(f"the policy declares `{name}`, which the function does not take")
    for name, p in params.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        field = declared.get(name)
        if field is None:
            problems.append(f"the function takes `{name}`, which the policy does not declare")
            continue
        if p.default is not p.empty and field.default is None:
            problems.append(f"`{name}` is required by the policy but optional in the function")
        if name in hints and not _fits(hints[name], field.type):
            problems.append(f"`{name}` is {_describe(hints[name])} in the function but {_declared(field.type)} "
                            "in the policy")
    if problems:
        raise ToolMismatch(f"tool `{tool.name}` does not match its declaration: " + "; ".join(sorted(problems)))


def _fits(hint: Any, t: A.Type) -> bool:
    match t:
        case A.IntType():
            return hint is int
        case A.BoolType():
            return hint is bool
        case A.StringType():
            return hint is str
        case A.EnumType(values):
            if hint is str:
                return True
            return typing.get_origin(hint) is typing.Literal and set(typing.get_args(hint)) == set(values)
    return False


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or repr(hint)


def _declared(t: A.Type) -> str:
    match t:
        case A.IntType(lo, hi):
            return "int" if lo is None else f"int[{lo}..{hi}]"
        case A.BoolType():
            return "bool"
        case A.StringType():
            return "string"
        case A.EnumType(values):
            return " | ".join(f'"{v}"' for v in values)
    return repr(t)
