"""A LangGraph agent loop with every tool call gated by oxdeai — runnable with no API key.

Run: .venv/bin/pip install -e '.[langchain]' && .venv/bin/python examples/agents/langgraph_shop.py

The graph is LangGraph's own: a model node, the prebuilt `ToolNode` (here over guarded
tools) and `tools_condition`. A scripted chat model stands in for the LLM: it tries
to mail a competitor, reads the error ToolMessage oxdeai answers, mails a customer
instead, then charges a card that declines — the guard completes the call "failed",
the day's spend is refunded, and the model reads the error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import tools_condition

from oxdeai import Guard
from oxdeai.integrations.langchain import guarded_tool_node

POLICY = Path(__file__).resolve().parent.parent / "shop.oxp"
Script = Callable[[list[ToolMessage]], "list[tuple[str, dict[str, Any]]] | str"]


class ScriptedChatModel(BaseChatModel):
    """A stand-in for an LLM: each turn, `script(the ToolMessages so far)` gives the tool
    calls to make, [(tool name, arguments)], or the final answer text."""

    script: Script
    turns: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        step = self.script([m for m in messages if isinstance(m, ToolMessage)])
        self.turns += 1
        if isinstance(step, str):
            message = AIMessage(content=step)
        else:
            message = AIMessage(content="", tool_calls=[
                {"name": name, "args": args, "id": f"call_{self.turns}_{i}", "type": "tool_call"}
                for i, (name, args) in enumerate(step)])
        return ChatResult(generations=[ChatGeneration(message=message)])


def agent_graph(model: BaseChatModel, tools_node: Any) -> Any:
    """The usual agent loop: model -> tools -> model ... until the model answers in text."""
    graph = StateGraph(MessagesState)
    graph.add_node("model", lambda state: {"messages": [model.invoke(state["messages"])]})
    graph.add_node("tools", tools_node)
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "model")
    return graph.compile()


def main() -> None:
    guard = Guard(POLICY)  # in production: store="sqlite:///state.db" or a Redis URL

    def send(to: str) -> str:
        """Send a mail."""
        return f"mailed {to}"

    def charge(amount: int, to: str, note: str) -> str:
        """Charge a card."""
        raise RuntimeError("card declined")

    def script(seen: list[ToolMessage]) -> list[tuple[str, dict[str, Any]]] | str:
        print(f"  model reads ({seen[-1].status}): {seen[-1].content}" if seen else "  model starts")
        if not seen:
            return [("mail__send", {"to": "ceo@rival.example"})]
        if len(seen) == 1:
            return [("mail__send", {"to": "ann@customers.example"})]
        if len(seen) == 2:
            return [("pay__charge", {"amount": 40, "to": "acct_ann"})]
        return "all done"

    app = agent_graph(ScriptedChatModel(script=script), guarded_tool_node(guard, {"mail.send": send,
                                                                                "pay.charge": charge}))
    with guard.bind(agent={"id": "agent-1", "tier": "pro"}):
        state = app.invoke({"messages": [("user", "go")]})
    print("final:", state["messages"][-1].content)
    print("spent today after the refund:", guard.engine.export_state()["spent"]["agent-1"]["value"])


if __name__ == "__main__":
    main()
