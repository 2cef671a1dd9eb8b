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
from oxdeai.dsl.types import MAX_SAFE_INT, MAX_STRING, int_bounds
from oxdeai.runtime.models import Reason

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
            low, high = int_bounds(lo, hi)
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


@dataclass(slots=True)
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

    def fingerprint(self) -> str:
        """The call's identity for idempotency: tool and args after defaults, as text. Each
        parameter has one type (str, int or bool), whose repr is exact and stable."""
        return repr((self.tool, sorted(self.args.items())))


_MISSING = object()


def _fast_checker(fields: tuple[A.Field, ...], forbid_extra: bool) -> Any:
    """Generated code accepting exactly what the pydantic model accepts (tests hold the two
    together); returns the normalised dict, or None to send the input down the slow path
    that explains what is wrong."""
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "_bad": _bad_string}
    lines = ["def check(raw):", "    if type(raw) is not dict: return None", "    n = 0", "    out = {}"]
    for index, f in enumerate(fields):
        lines.append(f"    v = raw.get({f.name!r}, _MISSING)")
        lines.append("    if v is _MISSING:")
        if f.default is None:
            lines.append("        return None")
        else:
            namespace[f"_d{index}"] = f.default.value
            lines.append(f"        out[{f.name!r}] = _d{index}")
        lines.append("    else:")
        lines.append("        n += 1")
        match f.type:
            case A.IntType(lo, hi):
                low, high = int_bounds(lo, hi)
                cond = f"type(v) is int and {low} <= v <= {high}"
            case A.BoolType():
                cond = "type(v) is bool"
            case A.StringType():
                cond = "type(v) is str and not _bad(v)"
            case A.EnumType(values):
                namespace[f"_e{index}"] = frozenset(values)
                cond = f"type(v) is str and v in _e{index}"
        lines.append(f"        if not ({cond}): return None")
        lines.append(f"        out[{f.name!r}] = v")
    if forbid_extra:
        lines.append("    if n != len(raw): return None")
    lines.append("    return out")
    exec(compile("\n".join(lines) + "\n", "<oxdeai:schema>", "exec"), namespace)  # noqa: S102 - generated here
    return namespace["check"]


class RequestSchema:
    def __init__(self, tools: dict[str, A.ToolDecl], agent: tuple[A.Field, ...]) -> None:
        self.fast_args = {name: _fast_checker(tool.params, True) for name, tool in tools.items()}
        self.fast_agent = _fast_checker(agent, False)
        self.tool_validators = {
            name: (_model(f"Args_{name.replace('.', '_')}", tool.params, "forbid").__pydantic_validator__,
                   tuple(p.name for p in tool.params))
            for name, tool in tools.items()
        }
        self.agent_validator = _model("Agent", agent, "ignore").__pydantic_validator__
        self.agent_fields = tuple(f.name for f in agent)
        self.known_tools = sorted(tools)

    def agent_record(self, raw: Any) -> tuple[dict[str, Any], list[Reason]]:
        """The agent as a decision sees it (the declared fields, defaults filled in), and
        the reasons it is refused (none when it fits the declaration)."""
        reasons: list[Reason] = []
        return _validate_object(raw, self.agent_validator, self.agent_fields, "agent", reasons), reasons

    def validate(self, call: Any, context: Any, clock_time: int) -> Request | list[Reason]:
        fast = self.validate_fast(call, context, clock_time)
        return fast if fast is not None else self.validate_slow(call, context, clock_time)

    def validate_fast(self, call: Any, context: Any, clock_time: int) -> Request | None:
        """The common case, a valid request, without building pydantic models; None otherwise."""
        if type(call) is not dict or type(context) is not dict or not call.keys() <= CALL_KEYS:
            return None
        tool = call.get("tool")
        check = self.fast_args.get(tool) if type(tool) is str else None
        if check is None:
            return None
        args = check(call.get("args", _MISSING))
        raw_agent = context.get("agent", {})
        agent = self.fast_agent(raw_agent)
        time = context.get("time", clock_time)
        if args is None or agent is None or type(time) is not int or not 0 <= time <= MAX_SAFE_INT:
            return None
        nonce = call.get("nonce")
        key = call.get("idempotency_key")
        for value in (nonce, key):
            if value is not None and (type(value) is not str or _bad_string(value)):
                return None
        agent_id = agent.get("id") if "id" in agent else raw_agent.get("id")
        if type(agent_id) is not str:
            agent_id = "" if agent_id is None else str(agent_id)
        return Request(str(tool), args, agent, agent_id, time, nonce, key)

    def validate_slow(self, call: Any, context: Any, clock_time: int) -> Request | list[Reason]:
        """Validation with the pydantic models: names every offending field."""
        if not isinstance(call, dict):
            return [_invalid(None, "the call must be a JSON object with `tool` and `args`")]
        if context is None:
            context = {}
        if not isinstance(context, dict):
            return [_invalid(None, "the context must be an object with `agent` and `time`")]
        reasons: list[Reason] = []
        for key in sorted(str(k) for k in call if k not in CALL_KEYS):  # keys of any type, sorted as text
            reasons.append(_invalid(key[:64], f"unknown request field `{key[:64]}`"))
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
        args = _validate_object(call.get("args", {}), validator, param_names, "args", reasons)
        raw_agent = context.get("agent", {})
        agent = _validate_object(raw_agent, self.agent_validator, self.agent_fields, "agent", reasons)
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


def _validate_object(raw: Any, validator: Any, names: tuple[str, ...], prefix: str,
                     reasons: list[Reason]) -> dict[str, Any]:
    """Validate `args` or `agent` with its pydantic model; problems go to `reasons`."""
    if not isinstance(raw, dict):
        reasons.append(_invalid(prefix, f"`{prefix}` must be an object"))
        return {}
    try:
        model = validator.validate_python(raw)
    except ValidationError as exc:
        reasons.extend(_reasons_from(exc, prefix))
        return {}
    return {name: getattr(model, f"f_{name}") for name in names}


def _bad_string(value: str) -> bool:
    return len(value) > MAX_STRING or (not value.isascii() and _has_surrogate(value))


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


CONTEXT_KEYS = ("agent", "time")  # what the host gives; the rest of a request line is the agent's call


def split_request(request: Any) -> tuple[Any, dict[str, Any]]:
    """One JSON object holding the agent's call and the host's context (a request file, a
    trace line, a test case), split into the two `Engine.decide` takes."""
    if not isinstance(request, dict):
        return request, {}
    call = {k: v for k, v in request.items() if k not in CONTEXT_KEYS}
    context = {k: request[k] for k in CONTEXT_KEYS if k in request}
    return call, context
