"""Hostile input: every public method gets arbitrary, oversized, wrongly typed and injection-shaped arguments.

Only documented errors (``MemoryPluginError`` subclasses) may come out, a failed call writes no memory or message,
and search answers every query string within the length limit."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_plugin import MemoryClient, MemoryPluginError, MemoryStore
from memory_plugin.query_time import named_periods
from memory_plugin.retrieval import query_terms
from memory_plugin.service.search import MAX_QUERY_TERMS, search_terms
from tests.conftest import SCOPE, make_fake_embedder
from tests.internals import sqlite_writer

INJECTIONS = ['{"$ne": ""}', "' OR 1=1 --", '"', "NEAR(", "*", "AND", "-x", "^", "a OR b", "x:y", "(", ")", "%", "_",
              "\\", "\x00", "col:*", "NEAR(a b, 3)", '"unterminated', "''", ";DROP TABLE memories;--"]  # fmt: skip
HOSTILE_OBJECTS: list[Any] = [None, 0, -1, 2**70, 1.5, float("nan"), float("inf"), True, b"bytes", [], {}, ["*"],
                              {"$ne": ""}, object(), ("a",), {"role": "user"}, [None], "x" * 40_000]  # fmt: skip

text_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(INJECTIONS),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=31), max_size=10),
    st.integers(min_value=30_000, max_value=45_000).map(lambda n: "é" * n),
)
anything = st.one_of(text_values, st.sampled_from(HOSTILE_OBJECTS), st.lists(text_values, max_size=3),
                     st.dictionaries(text_values, text_values, max_size=3))  # fmt: skip
scope_values = st.one_of(
    anything,
    st.fixed_dictionaries({"app_id": anything, "tenant_id": anything, "agent_id": anything, "run_id": anything}),
    st.builds(
        lambda field, value: {**SCOPE.segments(), field: value},
        st.sampled_from(["app_id", "tenant_id", "agent_id", "run_id"]),
        anything,
    ),
    st.just(SCOPE),
)
maybe = st.one_of(st.just(None), anything)
CALLS: dict[str, Any] = {
    "add_text": lambda s, a: s.add(a["scope"], text=a["x"], metadata=a["m"]),
    "add_messages": lambda s, a: s.add(a["scope"], messages=a["x"], sync=a["b"] if a["b"] is not None else True),
    "add_turns": lambda s, a: s.add(SCOPE, messages=[{"role": a["y"], "content": a["x"], "name": a["m"]}]),
    "add_timestamp": lambda s, a: s.add(SCOPE, text="fixed text", timestamp=a["x"]),
    "search": lambda s, a: s.search(a["scope"], a["x"], top_k=a["b"] if a["b"] is not None else 10),
    "search_filters": lambda s, a: s.search(
        SCOPE, "q", memory_types=a["x"], filters=a["m"], start_time=a["y"], end_time=a["b"]
    ),
    "list": lambda s, a: s.list(a["scope"], limit=a["b"] if a["b"] is not None else 20, cursor=a["x"]),
    "list_filters": lambda s, a: s.list(SCOPE, memory_types=a["x"], filters=a["m"], start_time=a["y"]),
    "get": lambda s, a: s.get(a["scope"], a["x"]),
    "update": lambda s, a: s.update(a["scope"], a["x"], text=a["y"], metadata=a["m"]),
    "update_existing": lambda s, a: s.update(SCOPE, a["existing"], text=a["y"], metadata=a["m"]),
    "delete": lambda s, a: s.delete(a["scope"], a["x"]),
    "history": lambda s, a: s.history(a["scope"], a["x"]),
    "messages": lambda s, a: s.messages(a["scope"], limit=a["b"] if a["b"] is not None else 100, cursor=a["x"]),
    "clear_messages": lambda s, a: s.clear_messages(a["scope"]),
    "requests": lambda s, a: s.requests(
        a["scope"], operation=a["y"], limit=a["b"] if a["b"] is not None else 50, cursor=a["x"]
    ),
    "flush": lambda s, a: s.flush(a["b"]),
}


def snapshot(store: MemoryStore) -> tuple[Any, ...]:
    conn = sqlite_writer(store)  # the whole record, whatever scope a refused call named
    return (
        conn.execute("SELECT id, text, metadata, updated_at FROM memories ORDER BY seq").fetchall(),
        conn.execute("SELECT id, content FROM messages ORDER BY seq").fetchall(),
        conn.execute("SELECT count(*) FROM history").fetchone()[0],
    )


@pytest.fixture(scope="module")
def store() -> Iterator[MemoryStore]:
    with tempfile.TemporaryDirectory() as folder, MemoryClient(path=Path(folder), embedder=make_fake_embedder()) as c:
        s = c.create_memory_store("fuzz")
        s.add(SCOPE, text="the user likes green tea")
        yield s


FUZZ_CASES = {"count": 0}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(CALLS)), scope=scope_values, x=anything, y=maybe, m=maybe, b=maybe)
def test_public_methods_raise_only_documented_errors_and_write_nothing_on_failure(
    store: MemoryStore, name: str, scope: Any, x: Any, y: Any, m: Any, b: Any
) -> None:
    FUZZ_CASES["count"] += 1
    existing = store.list(SCOPE, limit=1).items[0].id
    args = {"scope": scope, "x": x, "y": y, "m": m, "b": b, "existing": existing}
    before = snapshot(store)
    try:
        CALLS[name](store, args)
    except MemoryPluginError:
        assert snapshot(store) == before, name


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(query=st.one_of(st.text(min_size=1, max_size=200), st.lists(st.sampled_from(INJECTIONS), min_size=1,
                                                                    max_size=6).map(" ".join)))  # fmt: skip
def test_search_answers_any_query_within_the_limit(store: MemoryStore, query: str) -> None:
    FUZZ_CASES["count"] += 1
    try:
        store.search(SCOPE.with_(run_id="*"), query, top_k=5)
    except MemoryPluginError as e:  # only an empty / whitespace-only query is refused
        assert not query.strip(), (query, e)


@pytest.mark.parametrize("query", [*INJECTIONS, '"a" NEAR(b', "tea*", "-tea", "^tea", "tea AND", 'tea"'])
def test_fts_and_sql_syntax_in_queries_is_plain_text(store: MemoryStore, query: str) -> None:
    store.search(SCOPE, query)
    assert {m.id for m in store.list(SCOPE.with_(tenant_id="*"), limit=100).items}  # the table is intact


def test_a_long_query_is_cut_to_a_bounded_number_of_search_terms_and_periods(store: MemoryStore) -> None:
    rng = random.Random(3)
    cjk = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(4000))  # about 4,000 distinct bigrams
    assert len(query_terms(cjk)) > 3000
    assert search_terms(cjk) == query_terms(cjk)[:MAX_QUERY_TERMS]  # the first ones, in the query's order
    assert len(named_periods("2023 " * 800, datetime.now(timezone.utc))) == 1
    store.add(SCOPE, text=cjk[:20])
    assert cjk[:20] in [h.memory.text for h in store.search(SCOPE, cjk)]  # its terms come first: found by keyword
    assert store.search(SCOPE.with_(run_id="*"), "2023 " * 800) is not None
