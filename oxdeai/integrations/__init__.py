"""Framework adapters over `oxdeai.guard`, one module per framework, each an optional
extra imported only when its module is: `openai_agents` (`oxdeai[openai-agents]`),
`langchain` (`oxdeai[langchain]`, LangChain and LangGraph) and `mcp` (`oxdeai[mcp]`, the
gating proxy `oxdeai mcp-proxy` runs). docs/integrations.md."""
