"""Long-term memory extraction with an LLM (LangChain, LlamaIndex or a plain callable; no framework import).

Modules: :mod:`.extractor` (:class:`LLMExtractor`, consolidation and safeguards), :mod:`.prompts` (templates),
:mod:`.llm_json` (tolerant JSON parsing), :mod:`.event_time` (relative dates), :mod:`.llm` (calling the LLM).
"""

from __future__ import annotations

from .extractor import LLMExtractor
from .prompts import PromptTemplates

__all__ = ["LLMExtractor", "PromptTemplates"]
