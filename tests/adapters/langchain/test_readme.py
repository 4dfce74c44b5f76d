"""The README's "Use with LangChain" examples: those that need no hosted model run as written, on a real store
(real model) with a scripted chat model standing in for ``model``; the two that need one (the agent and the
langmem tools) are mirrored step by step here and in ``test_store.py``."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langgraph.checkpoint.memory import InMemorySaver

from langchain_memory_plugin import MemoryMiddleware, create_memory_tools
from memory_plugin import MemoryStore, Scope
from tests.adapters.langchain.fakes import ScriptedChatModel

with warnings.catch_warnings():
    # Imported once here: importing langchain-classic puts its deprecation notices back on (see test_classic.py).
    warnings.simplefilter("ignore")
    import langchain_classic.chains  # noqa: F401

pytestmark = pytest.mark.model
README = Path(__file__).resolve().parents[3] / "README.md"
SERVER_APP = "my-app"  # the app of the README's examples (and of real_store's server key)


def langchain_examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Use with LangChain\n") : text.index("## Use with LlamaIndex\n")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def example(marker: str) -> str:
    """The one README example containing ``marker``."""
    [found] = [block for block in langchain_examples() if marker in block]
    return found


def run(block: str, **names: Any) -> dict[str, Any]:
    namespace = {"__name__": "readme_example", **names}
    exec(compile(block, "README.md", "exec"), namespace)
    return namespace


def test_every_langchain_example_is_run_or_mirrored() -> None:
    markers = ["MemoryMiddleware(", "**fixed", "MemoryRetriever(", 'MemoryPluginStore(store, app_id="my-app")\n']
    markers += ["create_manage_memory_tool", "RunnableWithMessageHistory(", "ConversationChain("]
    assert len(langchain_examples()) == len(markers)
    assert all(example(marker) for marker in markers)


def test_tools_example(real_store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    tools = run(example("**fixed"), store=real_store)["tools"]
    assert set(tools) == {"save_memory", "search_memories", "update_memory", "delete_memory"}
    assert "The user is vegetarian" in capsys.readouterr().out


def test_retriever_example(real_store: MemoryStore, capsys: pytest.CaptureFixture[str]) -> None:
    user_1 = Scope("my-app", "user-1", "assistant", "s1")
    for text in ["The user is vegetarian", "The user loves Thai curry", "The user cooks on Sundays", "Has a cat"]:
        real_store.add(user_1, text=text)
    real_store.add(Scope("my-app", "user-2", "assistant", "s1"), text="User 2 eats only fish")
    names = run(example("MemoryRetriever("), store=real_store)
    assert len(names["docs"]) == 3 and len(names["best"]) == 1
    assert names["best"][0].page_content in {d.page_content for d in names["docs"]}
    assert "s1" in capsys.readouterr().out


def test_langgraph_store_example(real_store: MemoryStore) -> None:
    names = run(example('MemoryPluginStore(store, app_id="my-app")\n'), store=real_store)
    lg_store = names["lg_store"]
    assert lg_store.get(("user-1", "preferences"), "drink").value == {"text": "likes espresso", "cups": 2}
    assert [i.key for i in lg_store.search(("user-1",), query="coffee", filter={"cups": {"$gte": 2}})] == ["drink"]
    assert lg_store.list_namespaces(prefix=("user-1",), max_depth=2) == [("user-1", "preferences")]


def test_chat_history_example(real_store: MemoryStore) -> None:
    prompt = ChatPromptTemplate.from_messages([MessagesPlaceholder("history"), ("human", "{question}")])
    model = ScriptedChatModel(replies=["Hello Ann!"])
    run(example("RunnableWithMessageHistory("), store=real_store, prompt=prompt, model=model)
    stored = real_store.messages(Scope("my-app", "user-1", "assistant", "s1")).items
    assert [(m.role, m.content) for m in stored] == [("user", "Hi, I'm Ann"), ("assistant", "Hello Ann!")]


def test_classic_chain_example(real_store: MemoryStore) -> None:
    real_store.add(Scope("my-app", "user-1", "assistant", "s0"), messages=[{"role": "user", "content": "I drink tea"}])
    model = ScriptedChatModel(replies=["Tea."])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConversationChain's deprecation notice: the README lists it as older
        run(example("ConversationChain("), store=real_store, model=model)
    assert "I drink tea" in model.prompts[0][-1].text


@dataclass
class UserContext:
    tenant_id: str
    run_id: str


def test_agent_example_mirrored(real_store: MemoryStore) -> None:
    """The README's create_agent example, step by step, with a scripted model in place of gpt-4o-mini: the
    peanut allergy said on Monday is in Friday's prompt, with the options the README shows."""
    model = ScriptedChatModel(replies=["Noted, no peanuts.", "How about an apple?"])
    agent = create_agent(
        model,
        tools=create_memory_tools(real_store, app_id="my-app", agent_id="assistant"),
        system_prompt="You are a helpful assistant.",
        middleware=[MemoryMiddleware(real_store, app_id="my-app", agent_id="assistant", top_k=5)],
        context_schema=UserContext,
        checkpointer=InMemorySaver(),
    )
    agent.invoke(
        {"messages": [{"role": "user", "content": "I'm allergic to peanuts."}]},
        {"configurable": {"thread_id": "user-1/monday"}},
        context=UserContext("user-1", "monday"),
    )
    real_store.flush()
    agent.invoke(
        {"messages": [{"role": "user", "content": "Suggest a snack?"}]},
        {"configurable": {"thread_id": "user-1/friday"}},
        context=UserContext("user-1", "friday"),
    )
    assert "I'm allergic to peanuts." in model.system_prompts()[-1]
