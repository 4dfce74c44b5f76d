"""LangChain adapters for memory_plugin (install memory-plugin[langchain])."""
