"""``MemoryPluginRetriever`` against the real engine and the real local model."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llama_index_memory_plugin import MemoryPluginMemory, MemoryPluginRetriever
from memory_plugin import InvalidArgumentError, InvalidScopeError, MemoryStore
from tests.conftest import SCOPE

pytestmark = pytest.mark.model
OTHER_RUN = SCOPE.with_(run_id="session-002")
OTHER_TENANT = SCOPE.with_(tenant_id="user-002")
TENANT_WIDE = SCOPE.with_(agent_id="*", run_id="*")


@pytest.fixture
def remembered(real_store: MemoryStore) -> MemoryStore:
    chat = MemoryPluginMemory(real_store, SCOPE, metadata={"channel": "chat"}, sync=True)
    chat.put(ChatMessage(role="user", content="I drink espresso every morning."))
    real_store.add(OTHER_RUN, text="The user's dog is called Rex.", timestamp=datetime(2024, 6, 1, tzinfo=timezone.utc))
    real_store.add(OTHER_TENANT, text="This user drinks green tea, never coffee.")
    return real_store


def test_nodes_carry_text_score_and_where_the_memory_comes_from(remembered: MemoryStore) -> None:
    nodes = MemoryPluginRetriever(remembered, TENANT_WIDE, top_k=2, min_score=0.0).retrieve(
        "What coffee does the user drink?"
    )
    assert all(isinstance(n, NodeWithScore) for n in nodes) and len(nodes) == 2
    best = nodes[0]
    assert best.node.get_content() == "I drink espresso every morning."
    assert best.score is not None and 0.0 < best.score <= 1.0 and best.score >= (nodes[1].score or 0.0)
    metadata = best.node.metadata
    assert best.node.node_id == metadata["memory_id"] and metadata["memory_id"].startswith("mem_")
    assert metadata["memory_type"] == "message" and metadata["role"] == "user" and metadata["channel"] == "chat"
    assert metadata["scope"] == "app-001/user-001/assistant/session-001" and metadata["run_id"] == "session-001"
    assert datetime.fromisoformat(metadata["event_time"]) <= datetime.now(timezone.utc)
    assert not any(key.startswith("llama_index_") for key in metadata)
    # The model sees the text with when and who; ids and scope stay with the application.
    shown = best.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "event_time: " in shown and "role: user" in shown and "mem_" not in shown and "chat" not in shown


def test_never_returns_another_tenants_memories(remembered: MemoryStore) -> None:
    mine = MemoryPluginRetriever(remembered, TENANT_WIDE, top_k=10, min_score=0.0).retrieve("green tea or coffee?")
    assert {n.node.metadata["tenant_id"] for n in mine} == {"user-001"}
    both_tenants = SCOPE.with_(tenant_id=("user-001", "user-002"), agent_id="*", run_id="*")
    both = MemoryPluginRetriever(remembered, both_tenants, min_score=0.0)  # every hit, however loose
    assert {n.node.metadata["tenant_id"] for n in both.retrieve("green tea or coffee?")} == {"user-001", "user-002"}


async def test_async_retrieval_gives_the_same_nodes(remembered: MemoryStore) -> None:
    retriever = MemoryPluginRetriever(remembered, TENANT_WIDE)
    query = QueryBundle("what is the dog called?")
    sync_nodes = [(n.node.node_id, n.score) for n in retriever.retrieve(query)]
    async_nodes = [(n.node.node_id, n.score) for n in await retriever.aretrieve(query)]
    assert (
        async_nodes == sync_nodes
        and remembered_text(await retriever.aretrieve(query)) == "The user's dog is called Rex."
    )


def remembered_text(nodes: list[NodeWithScore]) -> str:
    return nodes[0].node.get_content()


def test_search_options_narrow_the_results(remembered: MemoryStore) -> None:
    def found(**options: object) -> list[str]:
        return [
            n.node.get_content() for n in MemoryPluginRetriever(remembered, TENANT_WIDE, **options).retrieve("the user")
        ]

    assert found(memory_types="fact") == ["The user's dog is called Rex."]
    assert found(filters={"channel": "chat"}) == ["I drink espresso every morning."]
    assert found(end_time=datetime(2025, 1, 1, tzinfo=timezone.utc)) == ["The user's dog is called Rex."]
    assert len(found(top_k=1)) == 1
    assert found(min_score=1.0) == []


def test_a_blank_query_finds_nothing(remembered: MemoryStore) -> None:
    assert MemoryPluginRetriever(remembered, TENANT_WIDE).retrieve("   ") == []


def test_bad_scope_or_options_fail_when_built(remembered: MemoryStore) -> None:
    with pytest.raises(InvalidScopeError, match="app_id"):
        MemoryPluginRetriever(remembered, {"app_id": "*", "tenant_id": "*", "agent_id": "*", "run_id": "*"})
    with pytest.raises(InvalidScopeError, match=r"missing segment\(s\) \['run_id'\]"):
        MemoryPluginRetriever(remembered, {"app_id": "app-001", "tenant_id": "user-001", "agent_id": "*"})
    with pytest.raises(InvalidArgumentError, match="top_k"):
        MemoryPluginRetriever(remembered, TENANT_WIDE, top_k=0)
    with pytest.raises(TypeError, match="MemoryStore"):
        MemoryPluginRetriever("agent_memory", TENANT_WIDE)
