"""MemoryMiddleware with a real ``create_agent``, a scripted model that records its prompts, and the real engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_memory_plugin import MemoryMiddleware, create_memory_tools
from memory_plugin import InvalidArgumentError, InvalidScopeError, MemoryStore, SearchHit
from tests.adapters.langchain.conftest import AGENT, APP, UserContext, scope
from tests.adapters.langchain.fakes import ScriptedChatModel

Invoke = Callable[..., dict[str, Any]]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def invoker(agent: Any, mode: str) -> Invoke:
    """Call the agent through its sync (``invoke``) or async (``ainvoke``) path, so every hook pair is exercised."""
    if mode == "sync":
        return agent.invoke
    return lambda *args, **kwargs: asyncio.run(agent.ainvoke(*args, **kwargs))


def memory_agent(store: MemoryStore, model: ScriptedChatModel, **options: Any) -> Any:
    middleware = MemoryMiddleware(store, app_id=APP, agent_id=AGENT, **options)
    return create_agent(
        model,
        system_prompt="You are a helpful assistant.",
        middleware=[middleware],
        context_schema=UserContext,
        checkpointer=InMemorySaver(),
    )


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def stored(store: MemoryStore, tenant: str = "alice", run: str = "s1") -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in store.messages(scope(tenant, run)).items]


@pytest.mark.model
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_facts_from_one_run_reach_the_prompt_of_the_next_run_of_the_same_tenant_only(
    real_store: MemoryStore, mode: str
) -> None:
    model = ScriptedChatModel()
    invoke = invoker(memory_agent(real_store, model), mode)

    invoke(user("My name is Alice and I live in Lisbon."), thread("a1"), context=UserContext("alice", "s1"))
    invoke(user("I am allergic to peanuts."), thread("a1"), context=UserContext("alice", "s1"))
    invoke(user("I have a dog called Rex."), thread("b1"), context=UserContext("bob", "s1"))
    real_store.flush()

    invoke(user("Which city do I live in?"), thread("a2"), context=UserContext("alice", "s2"))
    city_prompt = model.system_prompts()[-1]
    invoke(user("Can you suggest a snack with nuts?"), thread("a2"), context=UserContext("alice", "s2"))
    snack_prompt = model.system_prompts()[-1]
    invoke(user("Where do I live and what can I not eat?"), thread("b2"), context=UserContext("bob", "s2"))
    bob_prompt = model.system_prompts()[-1]

    assert city_prompt.startswith("You are a helpful assistant.\n\n<memories>")
    assert "I live in Lisbon" in city_prompt and city_prompt.rstrip().endswith("</memories>")
    assert "allergic to peanuts" in snack_prompt
    assert "Rex" not in city_prompt + snack_prompt
    assert "Lisbon" not in bob_prompt and "peanuts" not in bob_prompt and "Rex" in bob_prompt
    # Each turn was written once, to its own run; the checkpointed second turn did not rewrite the first.
    assert stored(real_store, "alice", "s1") == [
        ("user", "My name is Alice and I live in Lisbon."),
        ("assistant", "ok"),
        ("user", "I am allergic to peanuts."),
        ("assistant", "ok"),
    ]
    assert len(stored(real_store, "alice", "s2")) == 4


def test_auto_write_runs_in_the_background_by_default(store: MemoryStore) -> None:
    agent = memory_agent(store, ScriptedChatModel(replies=["Noted."]))
    agent.invoke(user("I like green tea"), thread("t"), context=UserContext("alice", "s1"))
    write = store.requests(scope(), operation="AddMemories").items[0]
    assert write.counts["pending"] == 1 and write.counts["messages"] == 2
    assert stored(store) == [("user", "I like green tea"), ("assistant", "Noted.")]  # durable at once
    store.flush()
    assert [m.text for m in store.list(scope()).items] == ["I like green tea"]  # "Noted." states nothing


def test_sync_mode_extracts_before_the_turn_ends(store: MemoryStore) -> None:
    agent = memory_agent(store, ScriptedChatModel(replies=["Noted."]), sync=True)
    agent.invoke(user("I like green tea"), thread("t"), context=UserContext("alice", "s1"))
    assert [m.text for m in store.list(scope()).items] == ["I like green tea"]  # "Noted." states nothing


def _lookup_loop() -> list[Any]:
    """A model that calls a tool twice before answering: a tool loop of five messages."""
    return [
        AIMessage("Let me check.", tool_calls=[{"name": "lookup", "args": {"q": "weather"}, "id": "call-1"}]),
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "forecast"}, "id": "call-2"}]),
        "It will be sunny.",
    ]


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return f"result for {q}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_tool_loops_never_write_a_message_twice(store: MemoryStore, mode: str) -> None:
    model = ScriptedChatModel(replies=_lookup_loop())
    middleware = MemoryMiddleware(store, app_id=APP, agent_id=AGENT, sync=True)
    agent = create_agent(
        model, tools=[lookup], middleware=[middleware], context_schema=UserContext, checkpointer=InMemorySaver()
    )
    invoke = invoker(agent, mode)
    invoke(user("What's the weather?"), thread("t"), context=UserContext("alice", "s1"))
    assert len(model.prompts) == 3
    assert stored(store) == [("user", "What's the weather?"), ("assistant", "It will be sunny.")]

    model.replies = ["You're welcome."]
    invoke(user("Thanks!"), thread("t"), context=UserContext("alice", "s1"))
    assert stored(store)[2:] == [("user", "Thanks!"), ("assistant", "You're welcome.")]
    # Long-term memories only of what states something: the question and the courtesies make none.
    assert [m.text for m in store.list(scope(), limit=100).items] == ["It will be sunny."]


def test_tool_messages_are_written_once_each_when_included(store: MemoryStore) -> None:
    model = ScriptedChatModel(replies=_lookup_loop())
    middleware = MemoryMiddleware(store, app_id=APP, agent_id=AGENT, include_tool_messages=True)
    agent = create_agent(
        model, tools=[lookup], middleware=[middleware], context_schema=UserContext, checkpointer=InMemorySaver()
    )
    agent.invoke(user("What's the weather?"), thread("t"), context=UserContext("alice", "s1"))
    agent.invoke(user("Thanks!"), thread("t"), context=UserContext("alice", "s1"))
    messages = store.messages(scope()).items
    assert [(m.role, m.content) for m in messages] == [
        ("user", "What's the weather?"),
        ("assistant", "Let me check."),
        ("tool", "result for weather"),
        ("assistant", '[tool call] lookup({"q": "forecast"})'),
        ("tool", "result for forecast"),
        ("assistant", "It will be sunny."),
        ("user", "Thanks!"),
        ("assistant", "ok"),
    ]
    assert messages[2].metadata["tool_call_id"] == "call-1"
    assert len({m.metadata["lc_message_id"] for m in messages}) == len(messages)


def test_recall_changes_only_the_model_request_never_the_state_or_the_callers_messages(store: MemoryStore) -> None:
    store.add(scope(run="old"), text="The user lives in Lisbon")
    model = ScriptedChatModel()
    agent = memory_agent(store, model, auto_write=False)
    given = [HumanMessage("Where do I live in Lisbon?")]
    result = agent.invoke({"messages": given}, thread("t"), context=UserContext("alice", "s1"))
    assert "The user lives in Lisbon" in model.system_prompts()[0]
    assert [type(m) for m in result["messages"]] == [HumanMessage, AIMessage]
    # LangGraph's reducer gives the caller's message an id; the middleware changes nothing else.
    assert [(type(m), m.content) for m in given] == [(HumanMessage, "Where do I live in Lisbon?")]
    assert "memory_handled_ids" not in result


def test_memories_already_in_the_conversation_are_not_repeated(store: MemoryStore) -> None:
    model = ScriptedChatModel(replies=["Lisbon is lovely.", "You said Lisbon."])
    agent = memory_agent(store, model, sync=True)
    agent.invoke(user("I live in Lisbon"), thread("t"), context=UserContext("alice", "s1"))
    agent.invoke(user("Remind me: do I live in Lisbon?"), thread("t"), context=UserContext("alice", "s1"))
    # Both memories of turn one are in the second prompt as messages already: no memory section is added.
    assert model.system_prompts() == ["You are a helpful assistant.", "You are a helpful assistant."]


def test_scope_is_fixed_at_construction_or_read_from_the_context(store: MemoryStore) -> None:
    fixed = MemoryMiddleware(store, app_id=APP, tenant_id="carol", agent_id=AGENT, run_id="s9", sync=True)
    create_agent(ScriptedChatModel(), middleware=[fixed]).invoke(user("hello from carol"))
    assert stored(store, "carol", "s9") == [("user", "hello from carol"), ("assistant", "ok")]

    renamed = MemoryMiddleware(store, app_id=APP, agent_id=AGENT, context_keys={"tenant_id": "user_id"}, sync=True)
    agent = create_agent(ScriptedChatModel(), middleware=[renamed])
    agent.invoke(user("hello from dave"), context={"user_id": "dave", "run_id": "s1"})
    assert stored(store, "dave", "s1")[0] == ("user", "hello from dave")

    # The context overrides a fixed segment, per call.
    create_agent(ScriptedChatModel(), middleware=[fixed]).invoke(user("hi"), context={"run_id": "s10"})
    assert stored(store, "carol", "s10")[0] == ("user", "hi")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_missing_or_wildcard_scope_id_is_a_clear_error(store: MemoryStore, mode: str) -> None:
    agent = create_agent(
        ScriptedChatModel(),
        middleware=[MemoryMiddleware(store, app_id=APP, agent_id=AGENT)],
        context_schema=UserContext,
    )
    invoke = invoker(agent, mode)
    with pytest.raises(InvalidScopeError, match=r"recall needs tenant_id, run_id.*runtime context"):
        invoke(user("hi"))
    with pytest.raises(InvalidScopeError, match=r"scope\.run_id.*'\*' and id lists are allowed only for reads"):
        invoke(user("hi"), context=UserContext("alice", "*"))
    writer = create_agent(ScriptedChatModel(), middleware=[MemoryMiddleware(store, app_id=APP, recall=False)])
    with pytest.raises(InvalidScopeError, match=r"auto-write needs tenant_id, agent_id, run_id"):
        invoker(writer, mode)(user("hi"))
    assert store.messages(scope()).items == []


def test_bad_options_fail_at_construction(store: MemoryStore) -> None:
    with pytest.raises(InvalidScopeError, match="a fixed scope segment"):
        MemoryMiddleware(store, tenant_id="*")
    with pytest.raises(InvalidScopeError, match="read_scope"):
        MemoryMiddleware(store, read_scope={"user": "*"})
    with pytest.raises(InvalidScopeError, match="app_id"):
        MemoryMiddleware(store, read_scope={"app_id": "*"})
    with pytest.raises(ValueError, match="min_score"):
        MemoryMiddleware(store, min_score=2)
    with pytest.raises(TypeError, match="MemoryStore"):
        MemoryMiddleware({"not": "a store"})  # type: ignore[arg-type]


def test_every_recall_option_is_checked_when_the_middleware_is_built(store: MemoryStore) -> None:
    # The recall options are the ones every adapter shares (memory_plugin.binding.RecallOptions): a bad top_k,
    # memory type or filter fails here, not at the agent's first model call.
    for options, field in [({"top_k": 0}, "top_k"), ({"memory_types": "no spaces!"}, "memory_types")]:
        with pytest.raises(InvalidArgumentError) as error:
            MemoryMiddleware(store, app_id=APP, **options)
        assert error.value.field == field
    with pytest.raises(InvalidArgumentError, match="top_k"):
        create_memory_tools(store, app_id=APP, top_k=51)


def test_recall_options_formatter_and_switches(store: MemoryStore) -> None:
    store.add(scope(run="old"), text="The user drinks espresso every morning")
    store.add(scope(run="old", agent="planner"), text="The user drinks tea at the planner")

    def ask(**options: Any) -> str:
        model = ScriptedChatModel()
        memory_agent(store, model, auto_write=False, **options).invoke(
            user("what does the user drink?"), thread("t"), context=UserContext("alice", "s1")
        )
        return model.system_prompts()[0]

    assert "espresso" in ask() and "tea" not in ask()
    assert "tea" in ask(read_scope={"run_id": "*", "agent_id": "*"})
    assert ask(read_scope={}) == "You are a helpful assistant."  # only this run: nothing yet
    assert ask(min_score=0.99) == "You are a helpful assistant."
    assert ask(recall=False) == "You are a helpful assistant."

    def numbered(hits: list[SearchHit]) -> str:
        return "MEMORY:\n" + "\n".join(f"{i}. {h.memory.text}" for i, h in enumerate(hits, 1))

    assert ask(formatter=numbered).endswith("MEMORY:\n1. The user drinks espresso every morning")
    assert ask(formatter=lambda hits: "") == "You are a helpful assistant."


def test_memory_section_is_appended_to_a_block_system_prompt_or_stands_alone(store: MemoryStore) -> None:
    store.add(scope(run="old"), text="The user drinks espresso")
    blocks = SystemMessage(content=[{"type": "text", "text": "Be brief."}])
    model = ScriptedChatModel()
    agent = create_agent(
        model,
        system_prompt=blocks,
        middleware=[MemoryMiddleware(store, app_id=APP, agent_id=AGENT)],
        context_schema=UserContext,
    )
    agent.invoke(user("what does the user drink?"), context=UserContext("alice", "s1"))
    sent = model.prompts[0][0]
    assert isinstance(sent.content, list) and sent.content[0] == {"type": "text", "text": "Be brief."}
    assert "The user drinks espresso" in sent.content[1]["text"]
    assert blocks.content == [{"type": "text", "text": "Be brief."}]

    bare = ScriptedChatModel()
    create_agent(bare, middleware=[MemoryMiddleware(store, app_id=APP, agent_id=AGENT)]).invoke(
        user("what does the user drink?"), context={"tenant_id": "alice", "run_id": "s2"}
    )
    assert bare.system_prompts()[0].startswith("<memories>")


def test_middleware_and_memory_tools_work_together(store: MemoryStore) -> None:
    model = ScriptedChatModel(
        replies=[
            AIMessage("", tool_calls=[{"name": "save_memory", "args": {"text": "Prefers aisle seats"}, "id": "c1"}]),
            "Saved.",
        ]
    )
    agent = create_agent(
        model,
        tools=create_memory_tools(store, app_id=APP, agent_id=AGENT),
        middleware=[MemoryMiddleware(store, app_id=APP, agent_id=AGENT, sync=True)],
        context_schema=UserContext,
    )
    agent.invoke(user("Remember that I prefer aisle seats"), context=UserContext("alice", "s1"))
    texts = sorted(m.text for m in store.list(scope()).items)
    assert texts == ["Prefers aisle seats", "Remember that I prefer aisle seats"]
