"""Operations as values: each parses raw arguments once (naming the field it refuses), and its JSON codec and its
result's codec read back what they wrote."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_plugin import InvalidArgumentError, InvalidScopeError, ops
from memory_plugin.models import AddResult, Memory, Page, SearchHit, SearchResults, Usage, every_page
from memory_plugin.scope import Scope
from tests.conftest import SCOPE, memory_value

WHEN = datetime(2024, 5, 9, 12, 0, tzinfo=timezone.utc)
EXAMPLES: list[tuple[type[ops.Operation[Any]], dict[str, Any]]] = [
    (ops.CreateStore, {"name": "s", "description": "d", "audit_retention_days": 30}),
    (ops.GetStore, {"name": "s"}),
    (ops.ListStores, {}),
    (ops.UpdateStore, {"name": "s", "changes": {"history_retention_days": 7, "audit_retention_days": None}}),
    (ops.DeleteStore, {"name": "s"}),
    (
        ops.Add,
        {
            "store": "s",
            "scope": SCOPE,
            "messages": [{"role": "user", "content": "hi", "timestamp": WHEN}],
            "metadata": {"a": 1},
            "sync": False,
            "idempotency_key": "k1",
        },
    ),
    (ops.Add, {"store": "s", "scope": str(SCOPE), "text": "a fact", "timestamp": WHEN}),
    (
        ops.Search,
        {
            "store": "s",
            "scope": SCOPE.with_(run_id=["a", "b"]),
            "query": "tea",
            "top_k": 3,
            "memory_types": ["fact"],
            "filters": {"n": [1, 2]},
            "start_time": WHEN,
        },
    ),
    (ops.ListMemories, {"store": "s", "scope": "app/*/*/*", "limit": 5, "cursor": None}),
    (ops.GetMemory, {"store": "s", "scope": SCOPE, "memory_id": "mem_1"}),
    (ops.UpdateMemory, {"store": "s", "scope": SCOPE, "memory_id": "mem_1", "metadata": {"x": True}}),
    (ops.DeleteMemory, {"store": "s", "scope": SCOPE, "memory_id": "mem_1"}),
    (ops.GetHistory, {"store": "s", "scope": SCOPE, "memory_id": "mem_1"}),
    (ops.ListMessages, {"store": "s", "scope": SCOPE, "limit": 7}),
    (ops.DeleteMessages, {"store": "s", "scope": SCOPE}),
    (ops.DeleteAll, {"store": "s", "scope": SCOPE.with_(agent_id="*", run_id="*")}),
    (ops.ListRequests, {"store": "s", "scope": "app/*/*/*", "operation": "AddMemories"}),
    (ops.Flush, {"store": "s", "timeout": 2}),
    (ops.ListExtractionJobs, {"store": "s"}),
    (ops.RetryExtraction, {"store": "s"}),
    (ops.PruneStore, {"store": "s"}),
    (ops.ListScopes, {"store": "s", "scope": "app/*/*/*", "level": "tenant_id", "limit": 5}),
    (ops.StoreStats, {"store": "s", "scope": "app/u1/*/*"}),
    (ops.ActivityStats, {"store": "s", "scope": "app/*/*/*", "minutes": 30}),
]


def test_every_public_operation_has_a_route_and_a_codec() -> None:
    assert {op for op, _ in EXAMPLES} == set(ops.BY_ROUTE.values())
    assert len(ops.BY_ROUTE) == len(ops.STORE_LIFECYCLE) + len(ops.STORE_OPERATIONS)
    assert all(op.NAME in ops.OPERATION_NAMES for op in ops.STORE_OPERATIONS)


@pytest.mark.parametrize(("op", "raw"), EXAMPLES, ids=lambda v: getattr(v, "__name__", ""))
def test_json_round_trip(op: type[ops.Operation[Any]], raw: dict[str, Any]) -> None:
    parsed = op.parse(**raw)
    assert op.from_json(parsed.to_json()) == parsed
    assert op.from_json(ops.raw_json(raw)) == parsed  # raw arguments sent as JSON parse to the same value


@pytest.mark.parametrize(
    ("op", "raw", "field"),
    [
        (ops.Search, {"store": "s", "scope": SCOPE, "query": "q", "top_k": 0}, "top_k"),
        (ops.Search, {"store": "s", "scope": SCOPE}, "query"),
        (ops.Search, {"scope": SCOPE, "query": "q"}, "store"),
        (ops.Search, {"store": "bad name", "scope": SCOPE, "query": "q"}, "store"),
        (ops.Add, {"store": "s", "scope": SCOPE.with_(run_id="*"), "text": "x"}, "scope.run_id"),
        (ops.Add, {"store": "s", "scope": SCOPE, "text": "x", "messages": []}, "messages"),
        (ops.Add, {"store": "s", "scope": SCOPE, "text": "x", "idempotency_key": ""}, "idempotency_key"),
        (ops.UpdateMemory, {"store": "s", "scope": SCOPE, "memory_id": "m"}, "text"),
        (ops.UpdateStore, {"name": "s", "changes": {"colour": "red"}}, "colour"),
        (ops.DeleteAll, {"store": "s", "scope": SCOPE.with_(tenant_id="*")}, "scope.tenant_id"),
        (ops.ListRequests, {"store": "s", "scope": SCOPE, "operation": "DropTables"}, "operation"),
        (ops.Flush, {"store": "s", "timeout": -1}, "timeout"),
        (ops.ListMemories, {"store": "s", "scope": SCOPE, "cursor": "forged"}, "cursor"),
    ],
)
def test_bad_input_names_the_field(op: type[ops.Operation[Any]], raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        op.parse(**raw)
    assert error.value.field == field


def test_from_json_refuses_unknown_fields_and_non_objects() -> None:
    with pytest.raises(InvalidArgumentError, match="topk: is not a field of Search"):
        ops.Search.from_json({"store": "s", "scope": str(SCOPE), "query": "q", "topk": 3})
    with pytest.raises(InvalidArgumentError, match="body"):
        ops.Search.from_json(["not", "an", "object"])
    with pytest.raises(InvalidScopeError):
        ops.Search.from_json({"store": "s", "scope": 7, "query": "q"})


def test_raw_json_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(InvalidArgumentError, match="metadata"):
        ops.raw_json({"metadata": {"when": object()}})


def memory(text: str) -> Memory:
    return memory_value(text, metadata={"a": 1})


def test_result_codecs_read_back_what_they_wrote() -> None:
    results = SearchResults([SearchHit(memory=memory("tea"), score=0.5)], "req_1", Usage(query_tokens=2, candidates=3))
    decoded = ops.Search.RESULT.decode(ops.Search.RESULT.encode(results))
    assert list(decoded) == list(results) and decoded.request_id == "req_1" and decoded.usage == results.usage
    page = Page[Memory](items=[memory("a")], next_cursor="abc")
    assert ops.ListMemories.RESULT.decode(ops.ListMemories.RESULT.encode(page)) == page
    added = AddResult(memories=[memory("b")], message_ids=["msg_1"], pending=False, request_id="req_2")
    assert ops.Add.RESULT.decode(ops.Add.RESULT.encode(added)) == added


segment = st.text(alphabet="abcxyz-_0123456789", min_size=1, max_size=12)


@given(
    tenant=st.one_of(segment, st.just("*"), st.lists(segment, min_size=2, max_size=4, unique=True)),
    query=st.text(min_size=1, max_size=50).filter(lambda q: q.strip() and "\x00" not in q),
    top_k=st.integers(1, 50),
    types=st.lists(st.sampled_from(["fact", "event", "message"]), unique=True, max_size=3),
)
def test_any_valid_search_round_trips(tenant: Any, query: str, top_k: int, types: list[str]) -> None:
    op = ops.Search.parse(store="s", scope=Scope("app", tenant, "*", "*"), query=query, top_k=top_k,
                          memory_types=types or None)  # fmt: skip
    assert ops.Search.from_json(op.to_json()) == op


def test_every_page_follows_the_cursor_and_reads_each_page_when_asked_for() -> None:
    stored = {None: Page[int](items=[1, 2], next_cursor="c1"), "c1": Page[int](items=[3], next_cursor=None)}
    reads: list[str | None] = []

    def read(cursor: str | None) -> Page[int]:
        reads.append(cursor)
        return stored[cursor]

    pages = every_page(read)
    assert next(pages).items == [1, 2] and reads == [None]
    assert [page.items for page in pages] == [[3]] and reads == [None, "c1"]
