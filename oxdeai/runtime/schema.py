"""Request validation: pydantic models generated from the tool and agent declarations.

Contract: `RequestSchema.validate(call, context)` never raises. It returns either
a normalised request (args with defaults filled, declared agent fields) or the
list of `invalid_request` reasons, each naming the offending field
(`args.amount`, `agent.role`, `tool`, `nonce`, ...). Integers must lie within
+-(2^53-1); strings must be Unicode scalar values (no lone surrogates) of at
most MAX_STRING code points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model

from oxdeai.dsl import ast as A
from oxdeai.runtime.models import Reason

MAX_SAFE_INT = 2**53 - 1
MAX_STRING = 65_536
CALL_KEYS = frozenset({"tool", "args", "nonce", "idempotency_key"})


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _scalar_string_fast(value: str) -> str:
    if len(value) > MAX_STRING:
        raise ValueError(f"string longer than {MAX_STRING} code points")
    if _has_surrogate(value):
        raise ValueError("string holds a lone surrogate (not a Unicode scalar value)")
    return value


SafeStr = Annotated[str, AfterValidator(_scalar_string_fast)]


def python_type(t: A.Type) -> Any:
    match t:
        case A.IntType(lo, hi):
            low = -MAX_SAFE_INT if lo is None else max(lo, -MAX_SAFE_INT)
            high = MAX_SAFE_INT if hi is None else min(hi, MAX_SAFE_INT)
            return Annotated[int, Field(ge=low, le=high)]
        case A.BoolType():
            return bool
        case A.StringType():
            return SafeStr
        case A.EnumType(values):
            return Literal[values]
    raise AssertionError(t)


def _model(name: str, fields: tuple[A.Field, ...], extra: Literal["forbid", "ignore"]) -> Any:
    spec: dict[str, Any] = {}
    for f in fields:
        default = ... if f.default is None else f.default.value
        spec[f"f_{f.name}"] = (python_type(f.type), Field(default, alias=f.name))
    config = ConfigDict(extra=extra, strict=True, populate_by_name=False)
    return create_model(name, __config__=config, **spec)


@dataclass(frozen=True, slots=True)
class Request:
    tool: str
    args: dict[str, Any]
    agent: dict[str, Any]
    agent_id: str
    time: int
    nonce: str | None
    idempotency_key: str | None

    def as_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": self.args, "agent": self.agent, "time": self.time,
                "nonce": self.nonce, "idempotency_key": self.idempotency_key}


class RequestSchema:
    def __init__(self, tools: dict[str, A.ToolDecl], agent: tuple[A.Field, ...]) -> None:
        self.tool_validators = {
            name: (_model(f"Args_{name.replace('.', '_')}", tool.params, "forbid").__pydantic_validator__,
                   tuple(p.name for p in tool.params))
            for name, tool in tools.items()
        }
        self.agent_validator = _model("Agent", agent, "ignore").__pydantic_validator__
        self.agent_fields = tuple(f.name for f in agent)
        self.known_tools = sorted(tools)

    def validate(self, call: Any, context: Any, clock_time: int) -> Request | list[Reason]:
        if not isinstance(call, dict):
            return [_invalid(None, "the call must be a JSON object with `tool` and `args`")]
        if context is None:
            context = {}
        if not isinstance(context, dict):
            return [_invalid(None, "the context must be an object with `agent` and `time`")]
        reasons: list[Reason] = []
        for key in sorted(k for k in call if k not in CALL_KEYS):
            reasons.append(_invalid(str(key)[:64], f"unknown request field `{str(key)[:64]}`"))
        tool = call.get("tool")
        if not isinstance(tool, str):
            reasons.append(_invalid("tool", "`tool` must be a string naming a declared tool"))
            return reasons
        entry = self.tool_validators.get(tool)
        if entry is None:
            shown = tool[:80]
            reasons.append(_invalid("tool", f"unknown tool `{shown}`"))
            return reasons
        validator, param_names = entry
        raw_args = call.get("args", {})
        args: dict[str, Any] = {}
        if not isinstance(raw_args, dict):
            reasons.append(_invalid("args", "`args` must be an object"))
        else:
            try:
                model = validator.validate_python(raw_args)
                args = {name: getattr(model, f"f_{name}") for name in param_names}
            except ValidationError as exc:
                reasons.extend(_reasons_from(exc, "args"))
        raw_agent = context.get("agent", {})
        agent: dict[str, Any] = {}
        if not isinstance(raw_agent, dict):
            reasons.append(_invalid("agent", "`agent` must be an object"))
        else:
            try:
                model = self.agent_validator.validate_python(raw_agent)
                agent = {name: getattr(model, f"f_{name}") for name in self.agent_fields}
            except ValidationError as exc:
                reasons.extend(_reasons_from(exc, "agent"))
        time = context.get("time", clock_time)
        if type(time) is not int or not 0 <= time <= MAX_SAFE_INT:
            reasons.append(_invalid("time", "`time` must be an integer number of Unix seconds"))
        optional: dict[str, str | None] = {}
        for key in ("nonce", "idempotency_key"):
            value = call.get(key)
            if value is not None and (not isinstance(value, str) or _bad_string(value)):
                reasons.append(_invalid(key, f"`{key}` must be a string of at most {MAX_STRING} code points"))
                value = None
            optional[key] = value
        if reasons:
            return reasons
        agent_id = agent.get("id") if "id" in agent else raw_agent.get("id")  # type: ignore[union-attr]
        if not isinstance(agent_id, str):
            agent_id = "" if agent_id is None else str(agent_id)
        return Request(tool, args, agent, agent_id, time, optional["nonce"], optional["idempotency_key"])


def _bad_string(value: str) -> bool:
    return len(value) > MAX_STRING or _has_surrogate(value)


def shown(text: str, limit: int = 80) -> str:
    """User text made safe to echo in a reason: cut short, lone surrogates escaped."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _invalid(name: str | None, message: str) -> Reason:
    return ("invalid_request", None if name is None else shown(name), shown(message, 300))


def _reasons_from(exc: ValidationError, prefix: str) -> list[Reason]:
    reasons: list[Reason] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = err.get("loc", ())
        field = str(loc[0])[:64] if loc else ""
        if field.startswith("f_"):
            field = field[2:]
        name = f"{prefix}.{field}" if field else prefix
        kind = err.get("type", "")
        if kind == "missing":
            message = f"missing required field `{name}`"
        elif kind == "extra_forbidden":
            message = f"unknown field `{name}`"
        else:
            message = f"`{name}`: {err.get('msg', 'invalid value')}"
        reasons.append(_invalid(name, message))
    return reasons
