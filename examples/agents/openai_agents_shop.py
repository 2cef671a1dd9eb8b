"""The OpenAI Agents SDK with every tool call gated by oxdeai — runnable with no API key.

Run: .venv/bin/pip install -e '.[openai-agents]' && .venv/bin/python examples/agents/openai_agents_shop.py

A scripted model stands in for the LLM: it first tries to mail a competitor, reads the
denial oxdeai returns as the tool's result, mails a customer instead, then charges
a card twice (a retry) — the charge runs once — and finishes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from agents import Agent, ModelResponse, RunConfig, Runner, Usage
from agents.models.interface import Model
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from oxdeai import Guard
from oxdeai.integrations.openai_agents import guarded_tool

POLICY = Path(__file__).resolve().parent.parent / "shop.oxp"
Script = Callable[[list[str]], "list[tuple[str, dict[str, Any]]] | str"]


class ScriptedModel(Model):
    """A stand-in for an LLM: each turn, `script(the tool outputs so far)` gives the tool
    calls to make, [(function name, arguments)], or the final answer text."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.turns = 0

    async def get_response(self, system_instructions: Any, input: Any, model_settings: Any, tools: Any,
                           output_schema: Any, handoffs: Any, tracing: Any, **_: Any) -> ModelResponse:
        items = input if isinstance(input, list) else []
        outputs = [str(i["output"]) for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"]
        step = self.script(outputs)
        self.turns += 1
        if isinstance(step, str):
            text = ResponseOutputText(type="output_text", text=step, annotations=[])
            out: list[Any] = [ResponseOutputMessage(id=f"m{self.turns}", type="message", role="assistant",
                                                    status="completed", content=[text])]
        else:
            out = [ResponseFunctionToolCall(type="function_call", id=f"fc{self.turns}_{i}",
                                            call_id=f"call_{self.turns}_{i}", name=name, arguments=json.dumps(args))
                   for i, (name, args) in enumerate(step)]
        return ModelResponse(output=out, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("this example does not stream")


def run(guard: Guard, tools: list[Any], script: Script, agent: dict[str, Any]) -> str:
    """One agent run with `tools`, the host's trusted `agent` record bound for its calls."""
    model = ScriptedModel(script)

    async def go() -> str:
        with guard.bind(agent=agent):
            result = await Runner.run(Agent(name="shop", instructions="", model=model, tools=tools), "go",
                                      run_config=RunConfig(tracing_disabled=True))
        return str(result.final_output)

    return asyncio.run(go())


def main() -> None:
    guard = Guard(POLICY)  # in production: store="sqlite:///state.db" or a Redis URL

    def send(to: str) -> str:
        """Send a mail."""
        return f"mailed {to}"

    charges: list[int] = []

    def charge(amount: int, to: str, note: str) -> str:
        """Charge a card."""
        charges.append(amount)
        return f"charged {amount} to {to} (receipt {len(charges)})"

    def script(outputs: list[str]) -> list[tuple[str, dict[str, Any]]] | str:
        print(f"  model reads: {outputs[-1]}" if outputs else "  model starts")
        if not outputs:
            return [("mail__send", {"to": "ceo@rival.example"})]
        if len(outputs) == 1:
            return [("mail__send", {"to": "ann@customers.example"})]  # it read why, and changed course
        if len(outputs) < 4:
            return [("pay__charge", {"amount": 40, "to": "acct_ann"})]  # asked twice: a retry
        return "all done"

    tools = [guarded_tool(guard, "mail.send", send), guarded_tool(guard, "pay.charge", charge)]
    print("final:", run(guard, tools, script, {"id": "agent-1", "tier": "pro"}))
    print("the card was charged", len(charges), "time(s)")


if __name__ == "__main__":
    main()
