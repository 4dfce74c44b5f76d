"""Scripted LLMs that record the prompts they receive, and memory stores on temp folders.

The LLMs are real LlamaIndex LLM classes (``CustomLLM``, and ``MockFunctionCallingLLM`` for agents) so chat
engines and agents drive them exactly as they drive a hosted model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM

from memory_plugin import Embedder, MemoryClient, MemoryStore, Settings
from tests.conftest import opened


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    """A prompt as one string, ``role: text`` per message."""
    return "\n".join(f"{m.role.value}: {m.content or ''}" for m in messages)


class RecordingLLM(CustomLLM):
    """A chat model that answers ``reply`` and records every prompt. As a condenser (``complete``) it returns the
    follow-up question unchanged, as a good condenser does when the question already stands alone."""

    reply: str = "Noted."
    prompts: list[list[ChatMessage]] = Field(default_factory=list, exclude=True)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, context_window=8192, model_name="recording-llm")

    @property
    def last_prompt(self) -> str:
        return prompt_text(self.prompts[-1])

    def _answer(self, messages: Sequence[ChatMessage]) -> ChatResponse:
        self.prompts.append([m.model_copy(deep=True) for m in messages])
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=self.reply), delta=self.reply)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages)

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return self._answer(messages)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        response = self._answer(messages)

        def stream() -> ChatResponseGen:
            yield response

        return stream()

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        question = re.search(r"Follow Up Input: (.*)", prompt)
        return CompletionResponse(text=question.group(1).strip() if question else prompt)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        response = self.complete(prompt)

        def stream() -> CompletionResponseGen:
            yield response

        return stream()


class ScriptedAgentLLM(MockFunctionCallingLLM):
    """A function-calling model that records every prompt; given ``tool``, it first calls that tool (no
    arguments) and answers ``reply`` once the tool result is in, else it answers ``reply`` at once."""

    reply: str = "Done."
    tool: str | None = None
    prompts: list[list[ChatMessage]] = Field(default_factory=list, exclude=True)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._response_generator = self._respond

    @property
    def last_prompt(self) -> str:
        return prompt_text(self.prompts[-1])

    def _respond(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.prompts.append([m.model_copy(deep=True) for m in messages])
        if self.tool and messages[-1].role != MessageRole.TOOL:
            call = ToolCallBlock(tool_call_id=f"call-{len(self.prompts)}", tool_name=self.tool, tool_kwargs={})
            return ChatMessage(role=MessageRole.ASSISTANT, blocks=[call])
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.reply)


def in_mode(mode: str, target: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``target.method`` (``mode="sync"``) or await ``target.a<method>`` on a fresh event loop."""
    if mode == "sync":
        return getattr(target, method)(*args, **kwargs)
    return asyncio.run(getattr(target, "a" + method)(*args, **kwargs))


@pytest.fixture
def real_store(
    request: pytest.FixtureRequest, tmp_path: Path, real_embedder: Embedder, backend: str
) -> Iterator[MemoryStore]:
    """A memory store with the real local embedding model on a temp folder: in this process, and on a memory
    server reached with the remote client (the adapters work over either unchanged). The server's key is of the
    test module's ``SERVER_APP``, else of ``app-001``."""
    app_id = getattr(request.module, "SERVER_APP", "app-001")
    with opened(backend, tmp_path / "real", real_embedder, Settings(), app_id=app_id) as client, client:
        yield client.create_memory_store("chat", description="LlamaIndex adapter tests")


@pytest.fixture
def store(client: MemoryClient) -> MemoryStore:
    """A memory store on a temp folder with the fake embedder, for logic tests."""
    return client.create_memory_store("chat", description="LlamaIndex adapter logic tests")
