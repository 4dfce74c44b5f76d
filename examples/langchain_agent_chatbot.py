"""A chatbot that remembers its users across sessions: ``create_agent`` + ``MemoryMiddleware``.

Every turn is written to the memory store (in the background), and before each answer the bot recalls what it
learned about the same user in earlier sessions; other users' memories are never seen.

Scripted offline demo (no API key, no network; the local embedding model, a temporary data folder):

    .venv/bin/python examples/langchain_agent_chatbot.py --demo

Interactive chat (the data folder keeps what the bot learns between runs):

    .venv/bin/python examples/langchain_agent_chatbot.py --user alice --session monday --path ./chatbot-memory

In the chat, ``/session NAME`` starts a new session, ``/user NAME`` switches user, ``/quit`` leaves. The chat uses
a real model when one is configured, else the scripted offline model:

- OpenAI: ``pip install langchain-openai``, ``export OPENAI_API_KEY=...`` (optional ``OPENAI_MODEL``, default
  ``gpt-4o-mini``).
- Ollama, local: ``pip install langchain-ollama``, ``ollama pull llama3.1``, ``export OLLAMA_MODEL=llama3.1``
  (optional ``OLLAMA_BASE_URL``).

A real model also gets the memory tools (``save_memory``, ``search_memories``, ...) to manage memory explicitly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_memory_plugin import MemoryMiddleware, create_memory_tools, format_memories
from memory_plugin import MemoryClient, MemoryStore, MemoryStoreNotFoundError, SearchHit

APP_ID = "chatbot-example"
STORE = "chatbot"
SYSTEM_PROMPT = "You are a friendly assistant. Keep answers short."
DEMO_SCRIPT = [
    ("alice", "monday", "Hi! I'm Alice. I live in Lisbon and I work as a nurse."),
    ("alice", "monday", "I'm allergic to peanuts, so keep that in mind for recipes."),
    ("alice", "friday", "Can you suggest a snack for me?"),
    ("alice", "friday", "Where do I live?"),
    ("bob", "monday", "Where do I live?"),
]


@dataclass
class ChatContext:
    """The runtime context each call carries: who is talking, in which session."""

    tenant_id: str
    run_id: str


class OfflineModel(BaseChatModel):
    """A scripted stand-in for an LLM: it states what it remembers (the memory section of its system prompt)
    when asked a question, and acknowledges anything else."""

    @property
    def _llm_type(self) -> str:
        return "offline-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> OfflineModel:  # type: ignore[override]
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any) -> ChatResult:
        system = next((m.text for m in messages if m.type == "system"), "")
        remembered = re.findall(r"^- (.+)$", system, re.M)
        question = next((m.text for m in reversed(messages) if m.type == "human"), "")
        if not question.rstrip().endswith("?"):
            reply = "Noted, I'll remember that."
        elif remembered:
            reply = "From our earlier chats I remember: " + " | ".join(remembered)
        else:
            reply = "I don't know anything about you yet."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


def real_model() -> BaseChatModel | None:
    """A configured LLM (OpenAI or Ollama), imported lazily; ``None`` when none is configured."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain_openai import ChatOpenAI
        except ImportError:
            print("OPENAI_API_KEY is set but langchain-openai is not installed: pip install langchain-openai")
        else:
            return ChatOpenAI(model=os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    if os.environ.get("OLLAMA_MODEL"):
        try:
            from langchain_ollama import ChatOllama
        except ImportError:
            print("OLLAMA_MODEL is set but langchain-ollama is not installed: pip install langchain-ollama")
        else:
            base_url = os.environ.get("OLLAMA_BASE_URL", "http://localhost:11434")
            return ChatOllama(model=os.environ["OLLAMA_MODEL"], base_url=base_url)
    return None


@dataclass
class RecallLog:
    """A formatter that also keeps what was recalled for the last model call, to show it."""

    recalled: list[str] = field(default_factory=list)

    def __call__(self, hits: Sequence[SearchHit]) -> str:
        self.recalled = [hit.memory.text for hit in hits]
        return format_memories(hits)


class Chatbot:
    """One agent serving every user; the user and session of each turn travel in the runtime context."""

    def __init__(self, store: MemoryStore, model: BaseChatModel, tools: Sequence[BaseTool] = ()) -> None:
        self.store = store
        self.log = RecallLog()
        memory = MemoryMiddleware(store, app_id=APP_ID, agent_id="chatbot", top_k=4, formatter=self.log)
        self.agent = create_agent(
            model,
            tools=list(tools),
            system_prompt=SYSTEM_PROMPT,
            middleware=[memory],
            context_schema=ChatContext,
            checkpointer=InMemorySaver(),  # one thread per user session: the turns of a session stay together
        )

    def ask(self, user: str, session: str, text: str) -> str:
        self.log.recalled = []
        result = self.agent.invoke(
            {"messages": [{"role": "user", "content": text}]},
            {"configurable": {"thread_id": f"{user}/{session}"}},
            context=ChatContext(tenant_id=user, run_id=session),
        )
        return str(result["messages"][-1].text)


def open_store(client: MemoryClient, fresh: bool) -> MemoryStore:
    if fresh:
        with contextlib.suppress(MemoryStoreNotFoundError):
            client.delete_memory_store(STORE)
    try:
        return client.get_memory_store(STORE)
    except MemoryStoreNotFoundError:
        return client.create_memory_store(STORE, description="LangChain chatbot example")


def run_demo(client: MemoryClient) -> None:
    store = open_store(client, fresh=True)
    bot = Chatbot(store, OfflineModel())
    session = None
    for user, run, text in DEMO_SCRIPT:
        if (user, run) != session:
            store.flush()  # background extraction of the previous session: done before the next one starts
            session = (user, run)
            print(f"\n== {user}, session {run!r}")
        print(f"{user}> {text}")
        answer = bot.ask(user, run, text)
        for memory in bot.log.recalled:
            print(f"   [recalled] {memory}")
        print(f"bot> {answer}")
    store.flush()
    monday = {"app_id": APP_ID, "tenant_id": "alice", "agent_id": "chatbot", "run_id": "monday"}
    kept = store.messages(monday).items
    print(f"\n{len(kept)} messages kept for alice's monday session, each once; bob's sessions never see them.")


def chat(client: MemoryClient, user: str, session: str) -> None:
    store = open_store(client, fresh=False)
    model = real_model()
    if model is None:
        print("No model configured (see the module docstring): using the scripted offline model.")
        bot = Chatbot(store, OfflineModel())
    else:
        bot = Chatbot(store, model, create_memory_tools(store, app_id=APP_ID, agent_id="chatbot"))
    print(f"Chatting as {user!r} in session {session!r}. /session NAME, /user NAME, /quit")
    while True:
        try:
            text = input(f"{user}> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return
        if text in ("/quit", "/exit"):
            return
        if text.startswith(("/session ", "/user ")):
            command, _, name = text.partition(" ")
            user, session = (name.strip(), session) if command == "/user" else (user, name.strip())
            store.flush()
            print(f"-- now {user!r}, session {session!r}")
            continue
        if text:
            print(f"bot> {bot.ask(user, session, text)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--demo", action="store_true", help="run the scripted offline demo and exit")
    parser.add_argument("--path", help="data folder (demo: a temporary folder; chat: ./chatbot-memory)")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--session", default="session-1")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the local embedding model is installed, never downloaded
    if args.demo:
        with tempfile.TemporaryDirectory() as tmp, MemoryClient(path=args.path or tmp) as client:
            run_demo(client)
        return 0
    with MemoryClient(path=args.path or "./chatbot-memory") as client:
        chat(client, args.user, args.session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
