"""A tool's `.oxp` declaration as the JSON Schema and function name a framework shows a model.

Contract: `json_schema(tool)` is the JSON Schema of exactly the arguments the
engine's request schema accepts (types, int ranges, enum values; a parameter is
required unless it has a default, and no other property is allowed), so a
framework validating against it passes the model only what the policy can decide
on. `function_name(tool)` is the tool's name in the `^[A-Za-z0-9_-]{1,64}$` form
function-calling APIs require: each `.` becomes `__`; `function_names(policy)`
refuses a policy where two tools would get one name.
"""

from __future__ import annotations

from typing import Any

from oxdeai.dsl import ast as A
from oxdeai.dsl.policy import CheckedPolicy
from oxdeai.dsl.types import MAX_STRING, int_bounds


def json_schema(tool: A.ToolDecl) -> dict[str, Any]:
    properties = {p.name: _property(p.type) for p in tool.params}
    for p in tool.params:
        if p.default is not None:
            properties[p.name]["default"] = p.default.value
    return {"type": "object", "properties": properties,
            "required": [p.name for p in tool.params if p.default is None], "additionalProperties": False}


def _property(t: A.Type) -> dict[str, Any]:
    match t:
        case A.IntType(lo, hi):
            low, high = int_bounds(lo, hi)
            return {"type": "integer", "minimum": low, "maximum": high}
        case A.BoolType():
            return {"type": "boolean"}
        case A.StringType():
            return {"type": "string", "maxLength": MAX_STRING}
        case A.EnumType(values):
            return {"type": "string", "enum": list(values)}
    raise AssertionError(t)


def function_name(tool: str) -> str:
    return tool.replace(".", "__")


def function_names(policy: CheckedPolicy) -> dict[str, str]:
    """Function name -> tool name for every tool of the policy."""
    out: dict[str, str] = {}
    for tool in policy.tools:
        name = function_name(tool)
        if name in out:
            raise ValueError(f"tools `{out[name]}` and `{tool}` would both be called `{name}`: rename one")
        if len(name) > 64:
            raise ValueError(f"tool `{tool}` gives the function name `{name}`, longer than 64 characters")
        out[name] = tool
    return out


def schema_mismatches(tool: A.ToolDecl, schema: dict[str, Any]) -> list[str]:
    """How a tool's JSON Schema published elsewhere (an MCP server's `inputSchema`)
    disagrees with its declaration: a parameter one has and the other has not, a
    different type or enum, or one the declaration requires but the schema makes
    optional (a model could omit it, and every such call would be denied). Empty when
    they agree. A property without a plain `type` is taken as it comes."""
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    required = set(required) if isinstance(required, list) else set()
    declared = {p.name: p for p in tool.params}
    problems = [f"`{n}` is declared but not in the schema" for n in declared if n not in properties]
    problems += [f"`{n}` is in the schema but not declared" for n in properties if n not in declared]
    for name, p in declared.items():
        theirs = properties.get(name)
        if not isinstance(theirs, dict):
            continue
        ours = _property(p.type)
        kind = theirs.get("type")
        if isinstance(kind, str) and kind != ours["type"]:
            problems.append(f"`{name}` is {ours['type']} in the declaration, {kind} in the schema")
        if "enum" in ours and isinstance(theirs.get("enum"), list) and set(theirs["enum"]) != set(ours["enum"]):
            problems.append(f"`{name}` takes {ours['enum']} in the declaration, {theirs['enum']} in the schema")
        if p.default is None and name not in required:
            problems.append(f"`{name}` is required in the declaration, optional in the schema")
    return problems
