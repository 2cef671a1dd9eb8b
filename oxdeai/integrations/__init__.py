"""Framework adapters over `oxdeai.guard`, one module per framework, each an optional
extra imported only when its module is: `openai_agents` (`oxdeai[openai-agents]`) and
`langchain` (`oxdeai[langchain]`, LangChain and LangGraph). docs/integrations.md."""
