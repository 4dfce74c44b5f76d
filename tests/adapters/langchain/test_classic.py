"""MemoryPluginMemory in a langchain-classic ``ConversationChain``, on the real engine."""

from __future__ import annotations

import asyncio
import warnings

import pytest
from pydantic import ValidationError

from langchain_memory_plugin import MemoryPluginMemory
from memory_plugin import MemoryStore
from tests.adapters.langchain.conftest import scope
from tests.adapters.langchain.fakes import ScriptedChatModel

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from langchain_classic.chains import ConversationChain


def conversation(store: MemoryStore, model: ScriptedChatModel, run: str, tenant: str = "alice") -> ConversationChain:
    return ConversationChain(llm=model, memory=MemoryPluginMemory(store=store, scope=scope(tenant, run)))


@pytest.mark.model
def test_a_classic_chain_recalls_earlier_runs_of_the_same_tenant_only(real_store: MemoryStore) -> None:
    model = ScriptedChatModel(replies=["Nice to meet you!", "Noted."])
    first = conversation(real_store, model, "s1")
    first.invoke({"input": "My name is Alice and I live in Lisbon."})
    first.invoke({"input": "I am allergic to peanuts."})
    conversation(real_store, model, "s1", tenant="bob").invoke({"input": "I have a dog called Rex."})

    conversation(real_store, model, "s2").invoke({"input": "Which city do I live in?"})
    asyncio.run(conversation(real_store, model, "s3", tenant="bob").ainvoke({"input": "Which city do I live in?"}))
    alice_prompt, bob_prompt = (p[-1].text for p in model.prompts[-2:])
    assert "I live in Lisbon" in alice_prompt and "Rex" not in alice_prompt
    assert "Lisbon" not in bob_prompt and "Rex" in bob_prompt
    assert [(m.role, m.content) for m in real_store.messages(scope("alice", "s1")).items] == [
        ("user", "My name is Alice and I live in Lisbon."),
        ("assistant", "Nice to meet you!"),
        ("user", "I am allergic to peanuts."),
        ("assistant", "Noted."),
    ]


def test_memory_variables_load_save_and_clear(store: MemoryStore) -> None:
    memory = MemoryPluginMemory(store=store, scope=scope(), memory_key="memories", input_key="question")
    assert memory.memory_variables == ["memories"]
    assert memory.load_memory_variables({"question": "tea?"}) == {"memories": ""}
    memory.save_context({"question": "I drink green tea", "lang": "en"}, {"answer": "Noted"})
    loaded = memory.load_memory_variables({"question": "what tea do I drink?"})["memories"]
    assert loaded.startswith("<memories>") and "- I drink green tea" in loaded
    assert asyncio.run(memory.aload_memory_variables({"question": "what tea do I drink?"})) == {"memories": loaded}
    asyncio.run(memory.asave_context({"question": "And oolong", "lang": "en"}, {"answer": "Ok"}))
    memory.clear()
    assert store.list(scope()).items == []
    assert memory.load_memory_variables({"question": "what tea do I drink?"}) == {"memories": ""}
    assert store.messages(scope()).items == []  # the run's raw messages are cleared too


def test_background_mode_and_read_scope(store: MemoryStore) -> None:
    store.add(scope(run="old", agent="planner"), text="The user drinks espresso")
    across_agents = MemoryPluginMemory(store=store, scope=scope(), read_scope={"agent_id": "*", "run_id": "*"})
    assert "espresso" in across_agents.load_memory_variables({"input": "drink"})["history"]
    this_run = MemoryPluginMemory(store=store, scope=scope(), read_scope={}, sync=False)
    this_run.save_context({"input": "I drink mate"}, {"response": "Ok"})
    store.flush()
    assert "mate" in this_run.load_memory_variables({"input": "drink"})["history"]
    assert "espresso" not in this_run.load_memory_variables({"input": "drink"})["history"]


def test_bad_input_is_a_clear_error(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="MemoryPluginMemory needs a concrete id"):
        MemoryPluginMemory(store=store, scope=scope().with_(run_id="*"))
    with pytest.raises(ValidationError, match="read_scope"):
        MemoryPluginMemory(store=store, scope=scope(), read_scope={"user": "*"})
    memory = MemoryPluginMemory(store=store, scope=scope())
    with pytest.raises(ValueError, match="One input key expected"):
        memory.load_memory_variables({"a": "x", "b": "y"})
    with pytest.raises(ValueError, match="one output key expected"):
        memory.save_context({"input": "x"}, {"a": "1", "b": "2"})
