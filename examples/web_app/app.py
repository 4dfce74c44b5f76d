"""A small chatbot web app whose workers share one memory: FastAPI + ``create_agent`` + ``MemoryMiddleware`` over
the remote client, so every worker of ``uvicorn --workers 4`` reads and writes the same memory server.

Start a memory server and make a key for the app (once)::

    memory-plugin serve --path ./chat-memory &
    memory-plugin keys create --path ./chat-memory --app web-chat --json     # prints key_id and secret

Then run the app with as many workers as you like::

    export MEMORY_PLUGIN_ENDPOINT=http://127.0.0.1:8080
    export MEMORY_PLUGIN_ACCESS_KEY_ID=mpk_...  MEMORY_PLUGIN_ACCESS_KEY_SECRET=...
    uvicorn app:app --app-dir examples/web_app --workers 4 --port 8000

    curl -s localhost:8000/chat -H 'Content-Type: application/json' \\
        -d '{"user": "alice", "session": "monday", "message": "I live in Lisbon."}'
    curl -s localhost:8000/chat -H 'Content-Type: application/json' \\
        -d '{"user": "alice", "session": "friday", "message": "Where do I live?"}'

Each answer says which worker (process id) served it. The scripted offline model answers a question with what it
remembers (the memories the middleware put into its system prompt) and acknowledges anything else; swap in any
LangChain chat model for a real bot. The store is created on first use if the key is an admin key, else create it
once with ``memory-plugin --endpoint ... stores --create web_chat``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from langchain_memory_plugin import MemoryMiddleware
from memory_plugin import AsyncMemoryClient

APP_ID = "web-chat"
STORE = "web_chat"
REMEMBERED = "From our earlier chats I remember:"


@dataclass
class ChatContext:
    """Who is talking, in which session: the scope of each call."""

    tenant_id: str
    run_id: str


class OfflineModel(BaseChatModel):
    """A scripted stand-in for an LLM: a question is answered with the remembered lines of the system prompt, one
    per line; anything else is acknowledged."""

    @property
    def _llm_type(self) -> str:
        return "offline-scripted"

    def _generate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        system = next((m.text for m in messages if m.type == "system"), "")
        remembered = re.findall(r"^- (.+)$", system, re.M)
        question = next((m.text for m in reversed(messages) if m.type == "human"), "")
        if not question.rstrip().endswith("?"):
            reply = "Noted."
        elif remembered:
            reply = "\n".join([REMEMBERED, *remembered])
        else:
            reply = "I don't know anything about you yet."
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


class ChatRequest(BaseModel):
    user: str = Field(min_length=1, max_length=128)
    session: str = Field(min_length=1, max_length=128)
    message: str = Field(min_length=1, max_length=4000)


class ChatAnswer(BaseModel):
    reply: str
    worker: int


def build_agent(store: Any, model: BaseChatModel | None = None, top_k: int = 50) -> Any:
    """The chat agent: recall from every session of the user before each answer, write each turn once answered
    (``sync=True``: the next request, on any worker, recalls it)."""
    memory = MemoryMiddleware(store, app_id=APP_ID, agent_id="web-chat", top_k=top_k, sync=True)
    return create_agent(model or OfflineModel(), middleware=[memory], context_schema=ChatContext)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One pooled remote client per worker, from $MEMORY_PLUGIN_ENDPOINT and the key variables.
    async with AsyncMemoryClient() as client:
        store = await client.get_or_create_memory_store(STORE, "the web chat's memory")
        app.state.agent = build_agent(store)
        yield


app = FastAPI(title="memory-plugin web chat", lifespan=lifespan)


@app.post("/chat")
async def chat(request: ChatRequest) -> ChatAnswer:
    """One turn of ``user``'s ``session``; the agent remembers the user across sessions and workers."""
    result = await app.state.agent.ainvoke(
        {"messages": [{"role": "user", "content": request.message}]},
        context=ChatContext(tenant_id=request.user, run_id=request.session),
    )
    return ChatAnswer(reply=result["messages"][-1].text, worker=os.getpid())


def remembered(reply: str) -> Sequence[str]:
    """The lines an answer of the offline model says it remembers."""
    lines = reply.splitlines()
    return lines[1:] if lines and lines[0] == REMEMBERED else []
