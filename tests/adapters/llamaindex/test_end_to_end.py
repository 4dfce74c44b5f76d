"""End to end with real LlamaIndex chat engines and agents, the real engine and the real local model: what a user
says in run 1 reaches the model's prompt in run 2 of the same tenant, never in another tenant's."""

from __future__ import annotations

import asyncio

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.chat_engine.types import BaseChatEngine

from llama_index_memory_plugin import MemoryPluginMemory, MemoryPluginRetriever
from memory_plugin import AsyncMemoryStore, MemoryStore, Scope
from memory_plugin.binding import store_views
from tests.adapters.llamaindex.conftest import RecordingLLM, ScriptedAgentLLM, prompt_text

pytestmark = pytest.mark.model
MODES = pytest.mark.parametrize("mode", ["sync", "async"])
SERVER_APP = "shop"  # real_store's server key is of this app
ANN = Scope(app_id="shop", tenant_id="ann", agent_id="assistant", run_id="monday")
BOB = ANN.with_(tenant_id="bob")
HANDBOOK = Scope(app_id="shop", tenant_id="staff", agent_id="handbook", run_id="v1")
ANN_SAYS = ["I'm allergic to peanuts, so no nuts in my recipes please.", "My sister Maria visits from Madrid soon."]
BOB_SAYS = ["I love peanut butter on toast every morning."]
QUESTION = "Can you suggest a snack for me?"


def chat(engine: BaseChatEngine, text: str, mode: str) -> str:
    if mode == "sync":
        return str(engine.chat(text))
    return str(asyncio.run(engine.achat(text)))


def first_runs(store: MemoryStore, engine_for: type[SimpleChatEngine] | None = None) -> None:
    """Monday: Ann and Bob each chat once through a SimpleChatEngine; every turn is written as it happens."""
    for scope, said in ((ANN, ANN_SAYS), (BOB, BOB_SAYS)):
        memory = MemoryPluginMemory(store, scope)
        engine = SimpleChatEngine.from_defaults(llm=RecordingLLM(reply="Noted."), memory=memory)
        for text in said:
            engine.chat(text)
        assert [m.content for m in memory.get_all()] == [t for text in said for t in (text, "Noted.")]
    assert store.flush(timeout=60)  # background extraction done before "Friday"


def friday(scope: Scope) -> Scope:
    return scope.with_(run_id="friday")


@MODES
def test_simple_chat_engine_recalls_the_same_tenant_only(real_store: MemoryStore, mode: str) -> None:
    first_runs(real_store)
    for scope, mine, theirs in ((ANN, "allergic to peanuts", "peanut butter"), (BOB, "peanut butter", "allergic")):
        llm = RecordingLLM(reply="How about some fruit?")
        memory = MemoryPluginMemory(real_store, friday(scope))
        engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="You are a helpful cook.")
        assert chat(engine, QUESTION, mode) == "How about some fruit?"
        prompt = llm.prompts[-1]
        assert prompt[0].content == "You are a helpful cook." and prompt[-1].content == QUESTION
        assert mine in llm.last_prompt and theirs not in llm.last_prompt
        # The second turn of Friday's run sees Friday's first exchange as short-term history.
        chat(engine, "And a drink?", mode)
        assert f"user: {QUESTION}\nassistant: How about some fruit?\nuser: And a drink?" in llm.last_prompt
        assert mine in llm.last_prompt


@MODES
def test_condense_plus_context_engine_recalls_memories_and_retrieves_context(
    real_store: MemoryStore, mode: str
) -> None:
    first_runs(real_store)
    real_store.add(HANDBOOK, text="The shop sells fruit bowls, rice cakes and peanut brittle.")
    for scope, mine, theirs in ((ANN, "allergic to peanuts", "peanut butter"), (BOB, "peanut butter", "allergic")):
        llm = RecordingLLM(reply="Try the rice cakes.")
        engine = CondensePlusContextChatEngine.from_defaults(
            retriever=MemoryPluginRetriever(real_store, HANDBOOK, top_k=1),
            llm=llm,
            memory=MemoryPluginMemory(real_store, friday(scope)),
        )
        assert chat(engine, "What snacks do you sell that suit me?", mode) == "Try the rice cakes."
        prompt = llm.last_prompt
        assert "rice cakes" in prompt.split("Instruction:")[0]  # retrieved context
        assert mine in prompt and theirs not in prompt  # recalled memory
        assert prompt.endswith("user: What snacks do you sell that suit me?")
        chat(engine, "Is the brittle ok?", mode)
        assert "user: What snacks do you sell that suit me?\nassistant: Try the rice cakes." in llm.last_prompt
        stored = real_store.messages(friday(scope)).items
        assert [m.content for m in stored][-2:] == ["Is the brittle ok?", "Try the rice cakes."]


def shop_hours() -> str:
    """Opening hours of the shop."""
    return "Open 9:00-17:00, closed on Sundays."


@pytest.mark.parametrize("api", ["sync-store", "async-store"])
async def test_function_agent_recalls_across_runs_and_keeps_tool_calls(real_store: MemoryStore, api: str) -> None:
    store: MemoryStore | AsyncMemoryStore = real_store if api == "sync-store" else store_views(real_store)[1]
    for scope, said in ((ANN, ANN_SAYS[0]), (BOB, BOB_SAYS[0])):
        llm = ScriptedAgentLLM(reply="Noted. We open at 9.", tool="shop_hours")
        agent = FunctionAgent(tools=[shop_hours], llm=llm, system_prompt="You are the shop assistant.")
        memory = MemoryPluginMemory(store, scope)
        answer = await agent.run(user_msg=f"{said} When do you open?", memory=memory)
        assert str(answer) == "Noted. We open at 9."
        # The whole exchange is kept, tool call and result included, and reads back as the agent wrote it.
        run = await memory.aget_all()
        assert [m.role for m in run] == [
            MessageRole.USER,
            MessageRole.ASSISTANT,
            MessageRole.TOOL,
            MessageRole.ASSISTANT,
        ]
        call = run[1].blocks[0]
        assert isinstance(call, ToolCallBlock) and call.tool_name == "shop_hours"
        assert run[2].additional_kwargs["tool_call_id"] == call.tool_call_id and "9:00-17:00" in (run[2].content or "")
    assert real_store.flush(timeout=60)

    for scope, mine, theirs in ((ANN, "allergic to peanuts", "peanut butter"), (BOB, "peanut butter", "allergic")):
        llm = ScriptedAgentLLM(reply="How about an apple?")
        agent = FunctionAgent(tools=[shop_hours], llm=llm, system_prompt="You are the shop assistant.")
        memory = MemoryPluginMemory(store, friday(scope))
        assert str(await agent.run(user_msg=QUESTION, memory=memory)) == "How about an apple?"
        prompt = llm.prompts[-1]
        assert prompt[0].content == "You are the shop assistant." and prompt[-1].content == QUESTION
        assert mine in prompt_text(prompt) and theirs not in prompt_text(prompt)
        assert "[tool call" not in prompt_text(prompt)  # stand-in texts of tool calls are never recalled


def test_streaming_chat_writes_the_streamed_answer(real_store: MemoryStore) -> None:
    memory = MemoryPluginMemory(real_store, ANN)
    engine = SimpleChatEngine.from_defaults(llm=RecordingLLM(reply="Streamed answer."), memory=memory)
    response = engine.stream_chat("Hello there")
    assert "".join(response.response_gen) == "Streamed answer."  # consuming it waits for the history write
    assert [(m.role, m.content) for m in memory.get_all()] == [
        (MessageRole.USER, "Hello there"),
        (MessageRole.ASSISTANT, "Streamed answer."),
    ]


def test_engine_passed_chat_history_becomes_the_run(real_store: MemoryStore) -> None:
    memory = MemoryPluginMemory(real_store, ANN)
    llm = RecordingLLM(reply="Sure.")
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory)
    history = [
        ChatMessage(role="user", content="Earlier question"),
        ChatMessage(role="assistant", content="Earlier answer"),
    ]
    engine.chat("Next question", chat_history=history)
    assert "user: Earlier question\nassistant: Earlier answer\nuser: Next question" in llm.last_prompt
    engine.reset()
    assert engine.chat_history == []
