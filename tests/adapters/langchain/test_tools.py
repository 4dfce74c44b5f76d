"""The memory tools inside a real ``create_agent`` loop, driven by a scripted model, on the real engine."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage

from langchain_memory_plugin import create_memory_tools
from memory_plugin import InvalidScopeError, MemoryStore
from tests.adapters.langchain.conftest import AGENT, APP, UserContext, scope
from tests.adapters.langchain.fakes import ScriptedChatModel


def call(name: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


def run_tools(
    store: MemoryStore, calls: list[AIMessage], context: Any, mode: str = "sync", **options: Any
) -> list[str]:
    """Let the scripted model make ``calls`` one after the other; returns the tool results, in order."""
    model = ScriptedChatModel(replies=[*calls, "done"])
    agent = create_agent(
        model, tools=create_memory_tools(store, app_id=APP, agent_id=AGENT, **options), context_schema=type(context)
    )
    inputs = {"messages": [{"role": "user", "content": "manage my memories"}]}
    if mode == "sync":
        result = agent.invoke(inputs, context=context)
    else:
        result = asyncio.run(agent.ainvoke(inputs, context=context))
    return [m.text for m in result["messages"] if m.type == "tool"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_save_search_update_delete_across_runs(store: MemoryStore, mode: str) -> None:
    [saved] = run_tools(
        store, [call("save_memory", text="The user is allergic to peanuts")], UserContext("alice", "s1"), mode
    )
    memory_id = re.search(r"id=(mem_\w+)", saved).group(1)  # type: ignore[union-attr]
    assert saved == f"Saved: id={memory_id}: The user is allergic to peanuts"
    assert store.get(scope(run="s1"), memory_id).memory_type == "fact"

    # A later run finds it (tenant-wide search) and can change it in its own run, by run_id.
    found, updated, after = run_tools(
        store,
        [
            call("search_memories", query="peanuts allergy"),
            call("update_memory", memory_id=memory_id, text="The user is allergic to peanuts and cashews", run_id="s1"),
            call("search_memories", query="cashews", top_k=1),
        ],
        UserContext("alice", "s2"),
        mode,
    )
    assert found.startswith(f"- id={memory_id} run_id=s1 agent_id={AGENT} score=")
    assert updated == f"Updated id={memory_id}: The user is allergic to peanuts and cashews"
    assert after.count("\n") == 0 and "cashews" in after
    assert [e.event for e in store.history(scope(run="s1"), memory_id)] == ["created", "updated"]

    [deleted, empty] = run_tools(
        store,
        [call("delete_memory", memory_id=memory_id, run_id="s1"), call("search_memories", query="peanuts")],
        UserContext("alice", "s3"),
        mode,
    )
    assert deleted == f"Deleted id={memory_id}."
    assert empty == "No matching memories."


def test_tools_never_reach_another_tenant_or_outside_the_search_scope(store: MemoryStore) -> None:
    bobs = store.add(scope(tenant="bob"), text="Bob's secret").memories[0]
    other_agent = store.add(scope(agent="planner"), text="Planner note").memories[0]
    results = run_tools(
        store,
        [
            call("search_memories", query="secret"),
            call("update_memory", memory_id=bobs.id, text="hijacked"),
            call("delete_memory", memory_id=bobs.id, run_id="s1"),
            call("update_memory", memory_id=other_agent.id, text="changed", agent_id="planner"),
            call("delete_memory", memory_id=bobs.id, run_id="*"),
        ],
        UserContext("alice", "s1"),
    )
    assert results[0] == "No matching memories."
    assert results[1].startswith("Error: no memory") and results[2].startswith("Error: no memory")
    assert results[3] == "Error: run_id: that memory is outside the memories these tools can reach"
    assert "allowed only for reads" in results[4]
    assert store.get(scope(tenant="bob"), bobs.id).text == "Bob's secret"
    assert store.get(scope(agent="planner"), other_agent.id).text == "Planner note"
    # With a search scope across agents, the planner's memory is reachable.
    [changed] = run_tools(
        store,
        [call("update_memory", memory_id=other_agent.id, text="changed", agent_id="planner")],
        UserContext("alice", "s1"),
        search_scope={"run_id": "*", "agent_id": "*"},
    )
    assert changed.startswith("Updated")


def test_model_mistakes_come_back_as_answers(store: MemoryStore) -> None:
    results = run_tools(
        store,
        [call("save_memory", text="   "), call("search_memories", query=""), call("delete_memory", memory_id="nope")],
        UserContext("alice", "s1"),
    )
    assert results == [
        "Error: text: must not be empty",
        "Error: query must not be empty.",
        "Error: no memory 'nope' in scope app-lc/alice/assistant/s1",
    ]


def test_a_bad_top_k_from_the_model_comes_back_as_an_answer(store: MemoryStore) -> None:
    store.add(scope(run="s0"), text="The user likes cashews")
    results = run_tools(
        store,
        [call("search_memories", query="cashews", top_k=99), call("search_memories", query="cashews", top_k=1)],
        UserContext("alice", "s1"),
    )
    assert results[0] == "Error: top_k: must be an integer from 1 to 50, got 99"
    assert results[1].startswith("- id=") and "cashews" in results[1]


def test_missing_scope_ids_are_raised_not_hidden(store: MemoryStore) -> None:
    model = ScriptedChatModel(replies=[call("save_memory", text="x")])
    agent = create_agent(model, tools=create_memory_tools(store, app_id=APP, agent_id=AGENT))
    with pytest.raises(InvalidScopeError, match="memory tools needs tenant_id, run_id"):
        agent.invoke({"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(InvalidScopeError, match="search_scope"):
        create_memory_tools(store, search_scope={"nope": "*"})


def test_tool_schemas_show_the_model_only_its_own_arguments(store: MemoryStore) -> None:
    tools = {t.name: t for t in create_memory_tools(store, app_id=APP)}
    assert set(tools) == {"save_memory", "search_memories", "update_memory", "delete_memory"}
    properties = {name: set(t.tool_call_schema.model_json_schema()["properties"]) for name, t in tools.items()}
    assert properties == {
        "save_memory": {"text"},
        "search_memories": {"query", "top_k"},
        "update_memory": {"memory_id", "text", "run_id", "agent_id"},
        "delete_memory": {"memory_id", "run_id", "agent_id"},
    }
    assert all(t.description and t.coroutine is not None for t in tools.values())  # type: ignore[attr-defined]


def test_tools_bound_to_a_fixed_scope_work_outside_an_agent(store: MemoryStore) -> None:
    tools = {t.name: t for t in create_memory_tools(store, app_id=APP, tenant_id="alice", agent_id=AGENT, run_id="s1")}
    saved = tools["save_memory"].invoke({"text": "The user is allergic to peanuts"})
    memory_id = re.search(r"id=(mem_\w+)", saved).group(1)  # type: ignore[union-attr]
    found = asyncio.run(tools["search_memories"].ainvoke({"query": "peanuts"}))
    assert found.startswith(f"- id={memory_id} run_id=s1 agent_id={AGENT} score=")
    assert tools["delete_memory"].invoke({"memory_id": memory_id}) == f"Deleted id={memory_id}."
    unbound = {t.name: t for t in create_memory_tools(store, app_id=APP, agent_id=AGENT)}
    with pytest.raises(InvalidScopeError, match="memory tools needs tenant_id, run_id"):
        unbound["search_memories"].invoke({"query": "peanuts"})
