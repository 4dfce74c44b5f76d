"""A LlamaIndex chatbot that remembers its users across sessions, with memory_plugin as its memory.

Every turn is written to a local memory store as it happens; before each answer, what the user said in earlier
sessions is recalled (hybrid search with the local all-MiniLM-L6-v2 model) and given to the model as a system
message, followed by the current session's recent messages. Users never see each other's memories.

Scripted demo, offline, no LLM and no API key needed (a fresh temporary data folder each time)::

    .venv/bin/python examples/llamaindex_chat_engine.py --demo

Chat with a real LLM (memories are kept in ./.memory_plugin, $MEMORY_PLUGIN_HOME, or --path)::

    # OpenAI
    pip install llama-index-llms-openai
    export OPENAI_API_KEY=sk-...            # optional: OPENAI_MODEL=gpt-4o-mini (the default)
    # or a local Ollama server (https://ollama.com; `ollama pull llama3.1` first)
    pip install llama-index-llms-ollama
    export OLLAMA_MODEL=llama3.1            # optional: OLLAMA_BASE_URL=http://localhost:11434

    python examples/llamaindex_chat_engine.py --user ann --session monday
    python examples/llamaindex_chat_engine.py --user ann --session friday   # recalls Monday
    python examples/llamaindex_chat_engine.py --user bob --session friday   # knows nothing of Ann

OpenAI is used when OPENAI_API_KEY is set, else Ollama when OLLAMA_MODEL is set.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import (
    LLM,
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from llama_index_memory_plugin import MemoryPluginMemory
from memory_plugin import MemoryClient, MemoryStore, MemoryStoreNotFoundError, Scope

STORE = "llamaindex_chat"
APP = "chat-demo"
SYSTEM_PROMPT = "You are a friendly assistant. Keep answers short and use what you know about the user."
DEMO_SCRIPT = [
    ("ann", "monday", "Hi! I'm vegetarian, so no meat suggestions please."),
    ("ann", "monday", "I'm flying to Lisbon on the 14th for a conference."),
    ("ann", "monday", "My cat Miso needs a sitter while I'm away."),
    ("bob", "monday", "I love a good steak on Fridays."),
    ("ann", "friday", "Can you suggest a dinner recipe for tonight?"),
    ("ann", "friday", "Who could look after my pet during the trip?"),
    ("bob", "friday", "Can you suggest a dinner recipe for tonight?"),
]


class DemoLLM(CustomLLM):
    """A scripted stand-in for a real model: it answers a question with the most relevant memory it was given,
    and acknowledges anything else. It shows what the model receives; it does not think."""

    last_recalled: list[str] = Field(default_factory=list, description="Memory lines of the last prompt.")

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(is_chat_model=True, model_name="scripted-demo")

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        question = messages[-1].content or ""
        memories = [line for m in messages if m.role == MessageRole.SYSTEM for line in recalled(m)]
        self.last_recalled = memories
        if question.endswith("?") and memories:
            reply = f"From what you told me before ({memories[0].split('] ', 1)[1]}), here is my suggestion."
        elif question.endswith("?"):
            reply = "I don't know anything about you yet; tell me more!"
        else:
            reply = "Noted, I'll remember that."
        return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=reply))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        yield self.chat(messages)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="Noted.")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        yield self.complete(prompt)


def recalled(message: ChatMessage) -> list[str]:
    """The memory lines (``- [date, role] text``) of the memory's recall system message."""
    return [line for line in (message.content or "").splitlines() if line.startswith("- [")]


def open_store(client: MemoryClient) -> MemoryStore:
    with contextlib.suppress(MemoryStoreNotFoundError):
        return client.get_memory_store(STORE)
    return client.create_memory_store(STORE, description="Long-term memory of the LlamaIndex chatbot example")


def chat_engine(store: MemoryStore, user: str, session: str, llm: LLM) -> SimpleChatEngine:
    """A chat engine whose memory is this user's session; recall reads every session of the user."""
    scope = Scope(app_id=APP, tenant_id=user, agent_id="assistant", run_id=session)
    memory = MemoryPluginMemory(store, scope, recall_top_k=3, metadata={"channel": "cli"})
    return SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt=SYSTEM_PROMPT)


def demo(path: str | None) -> None:
    with temporary_folder(path) as folder, MemoryClient(path=folder) as client:
        store = open_store(client)
        llm = DemoLLM()
        engines: dict[tuple[str, str], SimpleChatEngine] = {}
        day = ""
        for user, session, text in DEMO_SCRIPT:
            if session != day:
                day = session
                # Monday's memories are extracted in the background; by Friday they are long done.
                store.flush(timeout=60)
                print(f"\n=== {session.capitalize()} ===")
            engine = engines.setdefault((user, session), chat_engine(store, user, session, llm))
            print(f"{user:>4}> {text}")
            answer = engine.chat(text)
            for line in llm.last_recalled:
                print(f"      (recalled for the model: {line[2:]})")
            print(f" bot> {answer}")
        monday = store.messages(Scope(app_id=APP, tenant_id="ann", agent_id="assistant", run_id="monday")).items
        where = folder if path else "a temporary data folder (removed now; pass --path to keep one)"
        print(f"\nAnn's Monday session as stored: {len(monday)} raw turns, in order, in {where}.")


@contextlib.contextmanager
def temporary_folder(path: str | None) -> Iterator[str]:
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="memory-plugin-demo-") as folder:
        yield folder


def real_llm() -> LLM:
    """The configured LLM, imported only when asked for (neither integration is a dependency of this project)."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from llama_index.llms.openai import OpenAI  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            sys.exit("OPENAI_API_KEY is set: pip install llama-index-llms-openai")
        return OpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))  # type: ignore[no-any-return]
    if os.environ.get("OLLAMA_MODEL"):
        try:
            from llama_index.llms.ollama import Ollama  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            sys.exit("OLLAMA_MODEL is set: pip install llama-index-llms-ollama")
        base_url = os.environ.get("OLLAMA_BASE_URL", "http://localhost:11434")
        return Ollama(model=os.environ["OLLAMA_MODEL"], base_url=base_url, request_timeout=120.0)  # type: ignore[no-any-return]
    sys.exit("No LLM configured: set OPENAI_API_KEY or OLLAMA_MODEL (see the top of this file), or run with --demo.")


def interactive(path: str | None, user: str, session: str) -> None:
    llm = real_llm()
    with MemoryClient(path=path) as client:
        store = open_store(client)
        engine = chat_engine(store, user, session, llm)
        print(f"Chatting as {user!r} in session {session!r} (data in {client.path}). Empty line or Ctrl-D to stop.")
        while True:
            try:
                text = input(f"{user}> ").strip()
            except EOFError:
                break
            if not text:
                break
            print(f"bot> {engine.chat(text)}")
        store.flush(timeout=30)  # let background extraction finish before the folder is released


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--demo", action="store_true", help="run the scripted offline demo")
    parser.add_argument("--path", help="data folder (default: a temp folder for --demo, else ./.memory_plugin)")
    parser.add_argument("--user", default="ann", help="who is chatting (the tenant)")
    parser.add_argument("--session", default="session-1", help="this conversation (the run)")
    args = parser.parse_args(argv)
    if args.demo:
        demo(args.path)
    else:
        interactive(args.path, args.user, args.session)


if __name__ == "__main__":
    main()
