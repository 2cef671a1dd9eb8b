"""LangChain and LangGraph (`langchain-core`, `langgraph`): a guarded `BaseTool`, and a
LangGraph `ToolNode` of guarded tools.

Contract: `guarded_tool(guard, tool, fn)` is a `BaseTool` named after the `.oxp` tool
(`.` -> `__`), whose arguments schema is the declaration's JSON Schema and whose
every call goes through the guard (`guard.call` when invoked synchronously,
`guard.acall` asynchronously), with the model's tool call id as the nonce. It never
raises out of a run: a DENY, an idempotent repeat the guard does not hold, and a
function that raised (after the guard completed the call `"failed"`) all come back
as a `ToolMessage` with status `"error"` whose content the model reads; an ALLOW
comes back as the function's result. `guarded_tool_node(guard, {tool: fn})` is
LangGraph's own `ToolNode` over such tools, a drop-in for the prebuilt agent loop.
Install with `pip install 'oxdeai[langchain]'`.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import Any

from langchain_core.tools import BaseTool, ToolException

from oxdeai.guard import AlreadyDone, Denial, Guard
from oxdeai.guard.core import awaitable
from oxdeai.guard.signature import check_signature
from oxdeai.guard.tool_schema import function_name, function_names, json_schema

# The tool call id of the call being run: LangChain hands it to `run`, not to `_run`.
_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("oxdeai_langchain_call_id", default=None)


class GuardedTool(BaseTool):
    guard: Guard
    tool: str
    fn: Callable[..., Any]
    handle_tool_error: bool = True  # a ToolException becomes an error ToolMessage, not a failed run

    def run(self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any) -> Any:
        token = _call_id.set(tool_call_id)
        try:
            return super().run(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _call_id.reset(token)

    async def arun(self, tool_input: Any, *args: Any, tool_call_id: str | None = None, **kwargs: Any) -> Any:
        token = _call_id.set(tool_call_id)
        try:
            return await super().arun(tool_input, *args, tool_call_id=tool_call_id, **kwargs)
        finally:
            _call_id.reset(token)

    def _run(self, **args: Any) -> Any:
        if inspect.iscoroutinefunction(self.fn):
            raise ToolException(f"ERROR {self.tool}: this tool is async; invoke it with `ainvoke`")
        try:
            answer = self.guard.call(self.tool, args, self.fn, call_id=_call_id.get())
        except Exception as exc:  # completed "failed" by the guard before this
            raise ToolException(f"ERROR {self.tool} failed: {type(exc).__name__}: {exc}") from exc
        return _answer(answer)

    async def _arun(self, **args: Any) -> Any:
        try:  # a sync tool runs in a worker thread: it never blocks the loop
            answer = await self.guard.acall(self.tool, args, awaitable(self.fn), call_id=_call_id.get())
        except Exception as exc:
            raise ToolException(f"ERROR {self.tool} failed: {type(exc).__name__}: {exc}") from exc
        return _answer(answer)


def _answer(answer: Any) -> Any:
    if isinstance(answer, (Denial, AlreadyDone)):
        raise ToolException(answer.text)  # an error ToolMessage: the model reads it
    return answer


def guarded_tool(guard: Guard, tool: str, fn: Callable[..., Any], description: str | None = None) -> GuardedTool:
    """`fn` (sync or async) takes exactly the declared parameters, checked now (`ToolMismatch`)."""
    declared = guard.policy.tools.get(tool)
    if declared is None:
        raise KeyError(f"the policy `{guard.policy.name}` declares no tool `{tool}`")
    function_names(guard.policy)
    check_signature(fn, declared)
    return GuardedTool(name=function_name(tool), tool=tool, guard=guard, fn=fn, args_schema=json_schema(declared),
                       description=description or inspect.getdoc(fn) or f"The `{tool}` tool (authorized by oxdeai).")


def guarded_tool_node(guard: Guard, tools: dict[str, Callable[..., Any]]) -> Any:
    """LangGraph's `ToolNode` over `guarded_tool(guard, name, fn)` for each entry."""
    from langgraph.prebuilt import ToolNode

    return ToolNode([guarded_tool(guard, name, fn) for name, fn in tools.items()])
