"""The OpenAI Agents SDK (`openai-agents`): guarded `FunctionTool`s.

Contract: `guarded_tool(guard, tool, fn)` is a `FunctionTool` named after the `.oxp`
tool (`.` -> `__`), whose parameters schema is the declaration's (so the SDK and
the policy never drift apart) and whose every invocation goes through
`guard.acall` (a sync `fn` in a worker thread), with the SDK's tool call id as the nonce. The model receives, as the
tool's output: the function's result on ALLOW; the denial text on DENY; the
already-done text for an idempotent repeat the guard does not hold; and, when the
function raises, an error text naming the exception — after the guard has completed
the call `"failed"` (the SDK would otherwise end the run, or report the call done).
Arguments that are not a JSON object are answered as an error without a decision.
Install with `pip install 'oxdeai[openai-agents]'`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from agents import FunctionTool, RunContextWrapper

from oxdeai.guard import AlreadyDone, Denial, Guard
from oxdeai.guard.core import awaitable
from oxdeai.guard.signature import check_signature
from oxdeai.guard.tool_schema import function_name, function_names, json_schema


def guarded_tool(guard: Guard, tool: str, fn: Callable[..., Any], description: str | None = None) -> FunctionTool:
    """`fn` (sync or async) takes exactly the declared parameters, checked now (`ToolMismatch`)."""
    declared = guard.policy.tools.get(tool)
    if declared is None:
        raise KeyError(f"the policy `{guard.policy.name}` declares no tool `{tool}`")
    function_names(guard.policy)  # refuses a policy where two tools would share a function name
    check_signature(fn, declared)

    run = awaitable(fn)

    async def invoke(ctx: RunContextWrapper[Any], raw: str) -> str:
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            return f"ERROR {tool}: the arguments are not JSON ({exc.msg}); nothing was run"
        if not isinstance(args, dict):
            return f"ERROR {tool}: the arguments must be a JSON object; nothing was run"
        call_id = getattr(ctx, "tool_call_id", None)
        try:
            answer = await guard.acall(tool, args, run, call_id=call_id)
        except Exception as exc:  # the guard completed the call as "failed" before this
            return f"ERROR {tool} failed: {type(exc).__name__}: {exc}"
        if isinstance(answer, (Denial, AlreadyDone)):
            return answer.text
        return answer if isinstance(answer, str) else json.dumps(answer, default=str)

    return FunctionTool(
        name=function_name(tool),
        description=description or inspect.getdoc(fn) or f"The `{tool}` tool (authorized by oxdeai).",
        params_json_schema=json_schema(declared),
        on_invoke_tool=invoke,
        strict_json_schema=False,  # optional parameters (declared defaults) are not strict-mode schemas
    )
