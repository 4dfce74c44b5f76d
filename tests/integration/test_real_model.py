"""Retrieval with the real local model (all-MiniLM-L6-v2 from the ``local`` extra), offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_plugin import MemoryClient, Scope
from tests.conftest import turn

pytestmark = pytest.mark.model
USER = Scope(app_id="demo", tenant_id="user-42", agent_id="assistant", run_id="monday")


@pytest.fixture
def default_client(tmp_path: Path) -> MemoryClient:
    client = MemoryClient(path=tmp_path)  # the default embedder: the local model, no download
    yield client  # type: ignore[misc]
    client.close()


def test_default_store_records_the_local_model(default_client: MemoryClient) -> None:
    info = default_client.create_memory_store("s").info()
    assert (info.embedder, info.dimension) == ("all-MiniLM-L6-v2", 384)


def test_facts_from_one_run_are_recalled_in_another(default_client: MemoryClient) -> None:
    store = default_client.create_memory_store("agent_memory")
    store.add(
        USER,
        messages=[
            turn("user", "I'm allergic to peanuts, so please keep that in mind for recipes."),
            turn("assistant", "Understood, no peanuts."),
            turn("user", "My sister Maria is visiting from Madrid next week."),
            turn("assistant", "How nice! Any plans?"),
            turn("user", "I usually run 5k along the river before work."),
        ],
    )
    store.add(USER.with_(tenant_id="user-7"), messages=[turn("user", "I love peanut butter sandwiches.")])
    later = USER.with_(run_id="*")
    cases = {
        "Which foods should I avoid in recipes for this user?": "allergic to peanuts",
        "Who is coming to visit?": "sister Maria",
        "What exercise does the user do?": "run 5k",
    }
    for question, expected in cases.items():
        hits = store.search(later, question, top_k=2)
        assert expected in hits[0].memory.text, (question, [h.memory.text for h in hits])
        assert all(h.memory.scope.tenant_id == "user-42" for h in hits)


def test_chinese_query_finds_chinese_memory(default_client: MemoryClient) -> None:
    store = default_client.create_memory_store("zh")
    store.add(USER, messages=[turn("user", "我喜歡喝咖啡"), turn("assistant", "好的,我記住了")])
    store.add(USER, text="我住在台北")
    store.add(USER, text="我的狗叫小白")
    for rerank in (True, False):
        hits = store.search(USER.with_(agent_id="*", run_id="*"), "使用者喜歡什麼飲品", top_k=1, rerank=rerank)
        assert hits[0].memory.text == "我喜歡喝咖啡"


def test_mixed_language_memories(default_client: MemoryClient) -> None:
    store = default_client.create_memory_store("mixed")
    store.add(USER, text="User's favourite drink is 抹茶 latte")
    store.add(USER, text="User works at a bank in Singapore")
    assert store.search(USER, "抹茶", top_k=1)[0].memory.text == "User's favourite drink is 抹茶 latte"
