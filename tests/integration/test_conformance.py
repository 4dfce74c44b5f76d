"""The public store contract, run against the sync API and the async API (``api`` fixture), on real SQLite and
Chroma in a temp folder."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from memory_plugin import (
    ForbiddenError,
    InvalidArgumentError,
    InvalidScopeError,
    MemoryNotFoundError,
    Scope,
    SearchResults,
    Settings,
)
from memory_plugin.models import every_page
from tests.conftest import INDEX_PATH, SCAN_PATH, SCOPE, turn

OTHER_TENANT = SCOPE.with_(tenant_id="user-002")
OTHER_RUN = SCOPE.with_(run_id="session-002")
OTHER_AGENT = SCOPE.with_(agent_id="planner")
TENANT_WIDE = SCOPE.with_(agent_id="*", run_id="*")


@pytest.fixture(params=["memory", "scan", "vector-index"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Every contract test runs with vector candidates from the in-memory matrix, from a scan of the record and from
    the vector index."""
    return {"memory": Settings(), "scan": SCAN_PATH, "vector-index": INDEX_PATH}[str(request.param)]


def everything(api: Any, scope: Scope = TENANT_WIDE) -> list[Any]:
    pages = every_page(lambda cursor: api.list(scope, limit=100, cursor=cursor))
    return [item for page in pages for item in page.items]


def test_add_messages_keeps_raw_turns_and_makes_one_memory_per_turn(api: Any) -> None:
    stamp = datetime(2024, 3, 1, 9, 30, tzinfo=timezone.utc)
    result = api.add(
        SCOPE,
        messages=[
            turn("system", "You are helpful"),
            turn("user", "I like coffee", name="Ann", metadata={"turn": 1}),
            turn("assistant", "Coffee it is", timestamp=stamp + timedelta(minutes=1)),
            turn("tool", "lookup result"),
        ],
        metadata={"source": "chat"},
        timestamp=stamp,
    )
    assert not result.pending and result.request_id.startswith("req_")
    assert [m.text for m in result.memories] == ["I like coffee", "Coffee it is"]
    assert all(m.memory_type == "message" and m.scope == SCOPE for m in result.memories)
    assert result.memories[0].metadata == {"source": "chat", "turn": 1}
    assert result.memories[0].event_time == stamp
    assert result.memories[1].event_time == stamp + timedelta(minutes=1)
    messages = api.messages(SCOPE).items
    assert [m.id for m in messages] == result.message_ids
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You are helpful"),
        ("user", "I like coffee"),
        ("assistant", "Coffee it is"),
        ("tool", "lookup result"),
    ]
    assert messages[1].name == "Ann" and messages[1].metadata == {"source": "chat", "turn": 1}
    assert messages[0].timestamp == stamp
    assert result.memories[0].source_message_ids == [messages[1].id]


def test_add_text_makes_one_fact(api: Any) -> None:
    result = api.add(SCOPE, text="The user prefers short answers", metadata={"source": "manual"})
    [memory] = result.memories
    assert memory.memory_type == "fact" and memory.metadata == {"source": "manual"}
    assert api.get(SCOPE, memory.id) == memory
    assert api.messages(SCOPE).items == []


def test_search_finds_the_relevant_memory_with_scores_and_request_id(api: Any) -> None:
    api.add(SCOPE, text="The user drinks coffee every morning")
    api.add(SCOPE, text="The user has a dog called Rex")
    api.add(OTHER_RUN, text="The user lives in Lisbon")
    hits = api.search(TENANT_WIDE, "what does the user drink in the morning", top_k=3)
    assert isinstance(hits, SearchResults)
    assert hits[0].memory.text == "The user drinks coffee every morning"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert hits.request_id.startswith("req_") and hits.usage.query_tokens > 0 and hits.usage.candidates >= 1
    assert len(api.search(TENANT_WIDE, "coffee", top_k=1)) == 1
    assert api.search(TENANT_WIDE, "coffee", rerank=False)[0].memory.text == "The user drinks coffee every morning"


def test_reads_never_cross_scope_boundaries(api: Any) -> None:
    mine = api.add(SCOPE, text="secret of user one").memories[0]
    theirs = api.add(OTHER_TENANT, text="secret of user two").memories[0]
    assert [h.memory.id for h in api.search(TENANT_WIDE, "secret", top_k=10)] == [mine.id]
    assert [m.id for m in everything(api)] == [mine.id]
    for operation in (
        lambda: api.get(SCOPE, theirs.id),
        lambda: api.delete(SCOPE, theirs.id),
        lambda: api.update(SCOPE, theirs.id, text="hijacked"),
        lambda: api.history(SCOPE, theirs.id),
    ):
        with pytest.raises(MemoryNotFoundError) as error:
            operation()
        assert "secret of user two" not in str(error.value)
    assert api.get(OTHER_TENANT, theirs.id).text == "secret of user two"
    # Same tenant but another agent or run: single-memory operations need the memory's own full scope.
    with pytest.raises(MemoryNotFoundError):
        api.get(OTHER_RUN, mine.id)


def test_wildcards_and_id_lists(api: Any, backend: str) -> None:
    ids = {
        "base": api.add(SCOPE, text="alpha memory").memories[0].id,
        "run2": api.add(OTHER_RUN, text="alpha memory two").memories[0].id,
        "agent2": api.add(OTHER_AGENT, text="alpha memory three").memories[0].id,
        "tenant2": api.add(OTHER_TENANT, text="alpha memory four").memories[0].id,
    }

    def listed(scope: Scope) -> set[str]:
        return {m.id for m in everything(api, scope)}

    def searched(scope: Scope) -> set[str]:
        return {h.memory.id for h in api.search(scope, "alpha memory", top_k=50)}

    cases = [
        (SCOPE, {"base"}),
        (SCOPE.with_(run_id="*"), {"base", "run2"}),
        (SCOPE.with_(agent_id="*"), {"base", "agent2"}),
        (TENANT_WIDE, {"base", "run2", "agent2"}),
        (SCOPE.with_(tenant_id="*", agent_id="*", run_id="*"), set(ids)),
        (SCOPE.with_(tenant_id=["user-001", "user-002"], agent_id="*", run_id="*"), set(ids)),
        (SCOPE.with_(run_id=["session-001", "session-002"]), {"base", "run2"}),
        (SCOPE.with_(agent_id=["planner", "nobody"], run_id="*"), {"agent2"}),
    ]
    for scope, expected in cases:
        wanted = {ids[k] for k in expected}
        assert listed(scope) == wanted, scope
        assert searched(scope) == wanted, scope
    other_app = SCOPE.with_(app_id="other-app", tenant_id="*", agent_id="*", run_id="*")
    if backend == "http":  # a memory server's access key reaches one app: another app's scope is refused
        with pytest.raises(ForbiddenError):
            listed(other_app)
    else:
        assert listed(other_app) == searched(other_app) == set()


def test_memory_type_metadata_and_time_filters(api: Any) -> None:
    early = datetime(2023, 1, 1, tzinfo=timezone.utc)
    late = datetime(2024, 6, 1, tzinfo=timezone.utc)
    a = api.add(SCOPE, text="coffee fact", metadata={"source": "chat", "pinned": True}, timestamp=early).memories[0]
    b = api.add(
        SCOPE, messages=[turn("user", "coffee message")], metadata={"source": "email", "pinned": 1}, timestamp=late
    ).memories[0]

    def found(**kwargs: Any) -> set[str]:
        listed = {m.id for m in api.list(TENANT_WIDE, limit=100, **kwargs).items}
        searched = {h.memory.id for h in api.search(TENANT_WIDE, "coffee", **kwargs)}
        assert listed == searched, kwargs
        return listed

    assert found(memory_types="fact") == {a.id}
    assert found(memory_types=["fact", "message"]) == {a.id, b.id}
    assert found(memory_types="event") == set()
    assert found(filters={"source": "email"}) == {b.id}
    assert found(filters={"source": ["chat", "email"]}) == {a.id, b.id}
    assert found(filters={"pinned": True}) == {a.id}
    assert found(filters={"pinned": 1}) == {b.id}
    assert found(start_time=datetime(2024, 1, 1, tzinfo=timezone.utc)) == {b.id}
    assert found(end_time=early) == {a.id}
    assert found(start_time=early, end_time=late) == {a.id, b.id}


def test_pagination_never_repeats_or_skips(api: Any) -> None:
    created = [api.add(SCOPE, text=f"memory number {i}").memories[0].id for i in range(23)]
    seen, cursor, pages = [], None, 0
    while True:
        page = api.list(SCOPE, limit=5, cursor=cursor)
        pages += 1
        seen += [m.id for m in page.items]
        if page.next_cursor is None:
            break
        # Writes and deletes between pages neither repeat nor skip what is left.
        if pages == 2:
            api.add(SCOPE, text="added while paging")
        cursor = page.next_cursor
    assert seen[:23] == created and len(seen) == len(set(seen)) == 24
    assert pages == 5


def test_update_re_embeds_and_history_records_everything(api: Any) -> None:
    memory = api.add(SCOPE, text="The user likes tea", metadata={"v": 1}).memories[0]
    updated = api.update(SCOPE, memory.id, text="The user likes espresso")
    assert updated.id == memory.id and updated.text == "The user likes espresso" and updated.metadata == {"v": 1}
    assert updated.updated_at >= memory.updated_at
    assert api.search(SCOPE, "espresso", top_k=1)[0].memory.id == memory.id
    assert all(h.memory.text != "The user likes tea" for h in api.search(SCOPE, "tea"))
    api.update(SCOPE, memory.id, metadata={"v": 2})
    api.delete(SCOPE, memory.id)
    with pytest.raises(MemoryNotFoundError):
        api.get(SCOPE, memory.id)
    assert api.search(SCOPE, "espresso") == []
    events = api.history(SCOPE, memory.id)
    assert [e.event for e in events] == ["created", "updated", "updated", "deleted"]
    assert (events[1].old_text, events[1].new_text) == ("The user likes tea", "The user likes espresso")
    assert (events[2].old_metadata, events[2].new_metadata) == ({"v": 1}, {"v": 2})
    assert events[3].old_text == "The user likes espresso" and events[3].new_text is None
    with pytest.raises(MemoryNotFoundError):
        api.delete(SCOPE, memory.id)


def test_messages_page_in_order(api: Any) -> None:
    for i in range(3):
        api.add(SCOPE, messages=[turn("user", f"question {i}"), turn("assistant", f"answer {i}")])
    api.add(OTHER_RUN, messages=[turn("user", "elsewhere")])
    first = api.messages(SCOPE, limit=4)
    second = api.messages(SCOPE, limit=4, cursor=first.next_cursor)
    assert [m.content for m in first.items + second.items] == [
        "question 0",
        "answer 0",
        "question 1",
        "answer 1",
        "question 2",
        "answer 2",
    ]
    assert second.next_cursor is None


def test_audit_records_successes_and_failures(api: Any) -> None:
    added = api.add(SCOPE, text="audited")
    api.search(TENANT_WIDE, "audited")
    with pytest.raises(InvalidArgumentError):
        api.search(TENANT_WIDE, "audited", top_k=0)
    with pytest.raises(MemoryNotFoundError):
        api.get(SCOPE, "mem_missing")
    api.list(TENANT_WIDE)
    api.messages(SCOPE)
    records = api.requests(SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")).items
    assert [(r.operation, r.outcome) for r in records] == [
        ("ListMessages", "ok"),
        ("ListMemories", "ok"),
        ("GetMemory", "MemoryNotFoundError"),
        ("SearchMemories", "InvalidArgumentError"),
        ("SearchMemories", "ok"),
        ("AddMemories", "ok"),
    ]
    assert records[-1].request_id == added.request_id and records[-1].counts["memories"] == 1
    assert records[-1].scope == SCOPE and records[-1].latency_ms >= 0
    assert "top_k" in (records[3].error or "")
    adds = api.requests(SCOPE.with_(tenant_id="*", agent_id="*", run_id="*"), operation="AddMemories").items
    assert [r.request_id for r in adds] == [added.request_id]
    assert api.requests(SCOPE.with_(tenant_id="user-002", agent_id="*", run_id="*")).items == []
    page = api.requests(SCOPE.with_(tenant_id="*", agent_id="*", run_id="*"), limit=2)
    rest = api.requests(SCOPE.with_(tenant_id="*", agent_id="*", run_id="*"), limit=100, cursor=page.next_cursor)
    assert len({r.request_id for r in page.items + rest.items}) == len(page.items + rest.items)
    with pytest.raises(InvalidArgumentError, match="operation"):
        api.requests(SCOPE, operation="DropTables")


def test_background_extraction_finishes_after_flush(api: Any) -> None:
    said = [turn("user", "I moved to Porto"), turn("assistant", "Porto is lovely")]
    result = api.add(SCOPE, messages=said, sync=False)
    assert result.pending and result.memories == [] and len(result.message_ids) == 2
    assert [m.content for m in api.messages(SCOPE).items] == ["I moved to Porto", "Porto is lovely"]
    assert api.flush(timeout=30) is True
    assert {m.text for m in everything(api)} == {"I moved to Porto", "Porto is lovely"}
    text_result = api.add(SCOPE, text="Works as a nurse", sync=False)
    assert text_result.pending
    api.flush()
    assert api.search(TENANT_WIDE, "nurse", top_k=1)[0].memory.text == "Works as a nurse"


def _count_rows(api: Any) -> tuple[int, int]:
    everyone = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")
    memories = len(everything(api, everyone))
    messages = sum(len(api.messages(s).items) for s in (SCOPE, OTHER_RUN))
    return memories, messages


BAD_CALLS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("add", {"scope": SCOPE.with_(run_id="*"), "text": "x"}, InvalidScopeError, "scope.run_id"),
    ("add", {"scope": SCOPE.with_(tenant_id=["a", "b"]), "text": "x"}, InvalidScopeError, "scope.tenant_id"),
    ("add", {"scope": {"app_id": "a"}, "text": "x"}, InvalidScopeError, "missing"),
    ("add", {"scope": SCOPE}, InvalidArgumentError, "exactly one of messages= or text="),
    ("add", {"scope": SCOPE, "text": "x", "messages": [turn("user", "y")]}, InvalidArgumentError, "exactly one"),
    ("add", {"scope": SCOPE, "messages": []}, InvalidArgumentError, "messages: must not be empty"),
    (
        "add",
        {"scope": SCOPE, "messages": [turn("user", "ok"), turn("user", "")]},
        InvalidArgumentError,
        r"messages\[1\].content",
    ),
    (
        "add",
        {"scope": SCOPE, "messages": [turn("user", "ok"), turn("robot", "x")]},
        InvalidArgumentError,
        r"messages\[1\].role",
    ),
    ("add", {"scope": SCOPE, "messages": [turn("user", "x")] * 101}, InvalidArgumentError, "at most 100"),
    ("add", {"scope": SCOPE, "text": "x" * 32_001}, InvalidArgumentError, "text: must be at most 32000"),
    ("add", {"scope": SCOPE, "text": "x", "metadata": {"tenant_id": "user-002"}}, InvalidArgumentError, "reserved"),
    ("add", {"scope": SCOPE, "text": "x", "metadata": {"a": {"b": 1}}}, InvalidArgumentError, "flat scalars"),
    (
        "add",
        {"scope": SCOPE, "text": "x", "metadata": {f"k{i}": 1 for i in range(17)}},
        InvalidArgumentError,
        "at most 16",
    ),
    ("add", {"scope": SCOPE, "text": "x", "sync": "yes"}, InvalidArgumentError, "sync"),
    ("add", {"scope": SCOPE, "text": "x", "timestamp": "soon"}, InvalidArgumentError, "timestamp"),
    ("add", {"scope": {**SCOPE.segments(), "run_id": "x" * 129}, "text": "x"}, InvalidScopeError, "128"),
    ("search", {"scope": TENANT_WIDE, "query": ""}, InvalidArgumentError, "query: must not be empty"),
    ("search", {"scope": TENANT_WIDE, "query": "q" * 4001}, InvalidArgumentError, "query: must be at most 4000"),
    ("search", {"scope": TENANT_WIDE, "query": "q", "top_k": 51}, InvalidArgumentError, "top_k"),
    ("search", {"scope": TENANT_WIDE, "query": "q", "filters": {"run_id": "x"}}, InvalidArgumentError, "reserved"),
    ("search", {"scope": TENANT_WIDE, "query": "q", "memory_types": []}, InvalidArgumentError, "memory_types"),
    ("list", {"scope": TENANT_WIDE, "limit": 101}, InvalidArgumentError, "limit"),
    ("list", {"scope": TENANT_WIDE, "cursor": "nonsense"}, InvalidArgumentError, "cursor"),
    ("get", {"scope": TENANT_WIDE, "memory_id": "m"}, InvalidScopeError, "get needs a concrete id"),
    ("get", {"scope": SCOPE, "memory_id": ""}, InvalidArgumentError, "memory_id"),
    ("update", {"scope": SCOPE, "memory_id": "m"}, InvalidArgumentError, "give text=, metadata="),
    ("update", {"scope": SCOPE.with_(agent_id="*"), "memory_id": "m", "text": "x"}, InvalidScopeError, "update"),
    ("delete", {"scope": SCOPE.with_(run_id=["a", "b"]), "memory_id": "m"}, InvalidScopeError, "delete"),
    ("history", {"scope": TENANT_WIDE, "memory_id": "m"}, InvalidScopeError, "history"),
    ("messages", {"scope": SCOPE.with_(run_id="*")}, InvalidScopeError, "messages"),
    ("messages", {"scope": SCOPE, "limit": 0}, InvalidArgumentError, "limit"),
]


@pytest.mark.parametrize(
    ("method", "kwargs", "error", "message"), BAD_CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD_CALLS)]
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    api: Any, method: str, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    api.add(SCOPE, messages=[turn("user", "existing")])
    before = _count_rows(api)
    with pytest.raises(error, match=message):
        getattr(api, method)(**kwargs)
    assert _count_rows(api) == before


def test_metadata_never_changes_the_scope(api: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        api.add(SCOPE, messages=[turn("user", "x", metadata={"tenant_id": "user-002"})])
    memory = api.add(SCOPE, text="x", metadata={"tenant": "user-002"}).memories[0]
    assert memory.scope == SCOPE
    assert api.list(OTHER_TENANT.with_(agent_id="*", run_id="*")).items == []


def test_turns_keep_their_speaker_and_are_found_by_the_question_they_answer(api: Any) -> None:
    api.add(SCOPE, messages=[turn("user", "Where did you travel last summer?", name="Bob")])
    result = api.add(SCOPE, messages=[turn("assistant", "To Rome, with my sister.", name="Ann")])
    answer = result.memories[0]
    assert answer.speaker == "Ann" and answer.text == "To Rome, with my sister."
    api.add(SCOPE, messages=[turn("user", "My sister likes the summer.", name="Bob")])
    # "travel" only occurs in the question before the answer: the answer is found by it all the same.
    hits = api.search(SCOPE, "Where did Ann travel?", top_k=3)
    assert answer.id in [h.memory.id for h in hits[:2]]
    assert hits[-1].memory.text == "My sister likes the summer."


def test_clear_messages_empties_one_run_and_keeps_memories(api: Any) -> None:
    api.add(SCOPE, messages=[turn("user", "I like tea"), turn("assistant", "Tea it is")])
    api.add(OTHER_RUN, messages=[turn("user", "elsewhere")])
    assert api.clear_messages(SCOPE) == 2
    assert api.messages(SCOPE).items == []
    assert [m.content for m in api.messages(OTHER_RUN).items] == ["elsewhere"]
    assert {m.text for m in everything(api)} == {"I like tea", "Tea it is", "elsewhere"}
    with pytest.raises(InvalidScopeError, match="clear_messages needs a concrete id"):
        api.clear_messages(SCOPE.with_(run_id="*"))
    assert [m.content for m in api.messages(OTHER_RUN).items] == ["elsewhere"]
    operations = [r.operation for r in api.requests(SCOPE.with_(run_id="*"), operation="DeleteMessages").items]
    assert operations == ["DeleteMessages", "DeleteMessages"]


def test_scopes_stats_and_activity_summarise_a_read_scope(api: Any) -> None:
    api.add(SCOPE, messages=[turn("user", "tea please"), turn("assistant", "Green tea it is")])
    api.add(OTHER_RUN, text="a fact of run two")
    api.add(OTHER_TENANT, text="another user's fact", metadata={"kind": "x"})
    everyone = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")
    tenants = api.scopes(everyone)
    assert [(s.id, s.memories, s.messages) for s in tenants.items] == [("user-001", 3, 2), ("user-002", 1, 0)]
    assert tenants.next_cursor is None and all(s.last_active is not None for s in tenants.items)
    first = api.scopes(everyone, limit=1)
    assert [s.id for s in first.items] == ["user-001"]
    assert [s.id for s in api.scopes(everyone, cursor=first.next_cursor).items] == ["user-002"]
    runs = api.scopes(TENANT_WIDE, level="run_id")
    assert [(s.id, s.memories) for s in runs.items] == [("session-001", 2), ("session-002", 1)]
    stats = api.stats(everyone)
    assert (stats.memories, stats.messages, stats.tenants) == (4, 2, 2)
    assert stats.memory_types == {"message": 2, "fact": 2} and stats.failed_jobs == 0
    assert api.stats(TENANT_WIDE).tenants == 1
    minutes = api.activity(everyone, minutes=5)  # one bucket, or two when the test runs across a minute's end
    assert sum(m.operations.get("AddMemories", 0) for m in minutes) == 3 and sum(m.requests for m in minutes) >= 3
    assert all(m.errors == 0 and 0 <= m.p50_ms <= m.p95_ms for m in minutes) and 1 <= len(minutes) <= 2
    for bad, field in (({"level": "app_id"}, "level"), ({"cursor": "forged"}, "cursor")):
        with pytest.raises(InvalidArgumentError) as error:
            api.scopes(everyone, **bad)
        assert error.value.field == field
    with pytest.raises(InvalidArgumentError, match="minutes"):
        api.activity(everyone, minutes=0)


def test_requests_filter_by_outcome(api: Any) -> None:
    api.add(SCOPE, text="audited")
    with pytest.raises(MemoryNotFoundError):
        api.get(SCOPE, "mem_missing")
    everyone = SCOPE.with_(tenant_id="*", agent_id="*", run_id="*")
    assert [r.operation for r in api.requests(everyone, outcome="error").items] == ["GetMemory"]
    assert [r.outcome for r in api.requests(everyone, outcome="MemoryNotFoundError").items] == ["MemoryNotFoundError"]
    assert "AddMemories" in [r.operation for r in api.requests(everyone, outcome="ok").items]
    assert api.requests(everyone, key_id="mpk_nobody").items == []
    with pytest.raises(InvalidArgumentError, match="outcome"):
        api.requests(everyone, outcome="no such thing!")


def test_explain_gives_the_signals_behind_each_score(api: Any) -> None:
    api.add(SCOPE, text="The user drinks coffee every morning")
    api.add(SCOPE, text="The user has a dog")
    hits = api.search(SCOPE, "coffee in the morning", explain=True)
    assert hits[0].memory.text == "The user drinks coffee every morning"
    for hit in hits:
        assert hit.signals is not None and hit.signals["score"] == pytest.approx(hit.score)
        assert {"semantic", "lexical"} <= set(hit.signals) and all(isinstance(v, float) for v in hit.signals.values())
    assert hits[0].signals["lexical"] > 0  # it shares words with the query
    assert all(hit.signals is None for hit in api.search(SCOPE, "coffee"))
