"""LlamaIndex adapters for memory_plugin (install memory-plugin[llamaindex])."""
