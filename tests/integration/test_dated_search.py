"""Queries that name a date rank the memories from then higher (the ``date`` signal of the score contract)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from memory_plugin import MemoryClient
from tests.conftest import SCOPE, turn


def said(content: str, when: datetime) -> dict[str, object]:
    return turn("user", content, name="Ann", timestamp=when.isoformat())


def test_the_memory_from_the_named_day_comes_first(client: MemoryClient) -> None:
    store = client.create_memory_store("dated")
    store.add(SCOPE, messages=[said("I cooked pasta for my sister", datetime(2024, 6, 10, tzinfo=timezone.utc))])
    store.add(SCOPE, messages=[said("I cooked soup for my sister", datetime(2024, 5, 3, tzinfo=timezone.utc))])
    for query, expected in [
        ("What did Ann cook on 3 May, 2024?", "soup"),
        ("What did Ann cook in June 2024?", "pasta"),
    ]:
        hits = store.search(SCOPE.with_(run_id="*"), query, top_k=2)
        assert expected in hits[0].memory.text, query
        assert hits[0].score > hits[1].score


def test_a_memory_from_the_named_day_is_found_even_when_neither_retriever_ranks_it(client: MemoryClient) -> None:
    store = client.create_memory_store("dated")
    start = datetime(2023, 1, 2, tzinfo=timezone.utc)
    # 120 better word and vector matches, months earlier, fill both retrievers' candidate pools.
    for day in range(120):
        store.add(SCOPE, messages=[said("I cook rice at home", start + timedelta(days=2 * day))])
    store.add(SCOPE, messages=[said("We had a pasta night with friends", datetime(2024, 9, 3, tzinfo=timezone.utc))])
    hits = store.search(SCOPE.with_(run_id="*"), "What did Ann cook on 3 September, 2024?", top_k=5)
    assert "pasta night" in hits[0].memory.text
    undated = store.search(SCOPE.with_(run_id="*"), "What did Ann cook?", top_k=5)
    assert all("pasta night" not in h.memory.text for h in undated)


def test_yesterday_is_relative_to_the_search(client: MemoryClient) -> None:
    store = client.create_memory_store("dated")
    now = datetime.now(timezone.utc)
    store.add(SCOPE, messages=[said("I watched a film about whales", now - timedelta(days=1))])
    store.add(SCOPE, messages=[said("I watched a film about sharks", now - timedelta(days=40))])
    assert "whales" in store.search(SCOPE, "Which film did Ann watch yesterday?", top_k=1)[0].memory.text
