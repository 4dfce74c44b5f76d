from __future__ import annotations

from datetime import datetime, timezone

from memory_plugin import Scope
from memory_plugin.filters import ReadFilter
from memory_plugin.storage.chroma import index_where
from memory_plugin.storage.sqlite.sql import memory_sql, scope_sql


def test_wildcards_add_no_clause_and_lists_become_in() -> None:
    clauses, params = scope_sql(Scope(app_id="app", tenant_id=["u1", "u2"], agent_id="*", run_id="r"), "m")
    assert clauses == ["m.app_id = ?", "m.tenant_id IN (?, ?)", "m.run_id = ?"]
    assert params == ["app", "u1", "u2", "r"]


def test_memory_sql_combines_store_scope_types_metadata_and_time() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    read = ReadFilter(
        store_id=3,
        scope=Scope(app_id="app", tenant_id="u", agent_id="*", run_id="*"),
        memory_types=("event", "fact"),
        metadata={"source": ("chat",), "pinned": (True,)},
        start_time=start,
    )
    where, params = memory_sql(read)
    assert where.startswith("m.store_id = ? AND m.app_id = ? AND m.tenant_id = ? AND m.memory_type IN (?, ?)")
    assert "json_extract(m.metadata, '$.source') = ?" in where
    assert "json_type(m.metadata, '$.pinned') = ?" in where
    assert where.endswith("m.event_time >= ?")
    assert params == [3, "app", "u", "event", "fact", "chat", "true", start.timestamp()]


def test_filters_are_built_fresh_each_call() -> None:
    read = ReadFilter(store_id=1, scope=Scope(app_id="app", tenant_id="u", agent_id="a", run_id="r"))
    assert memory_sql(read) == memory_sql(read)
    assert index_where(read) == index_where(read)


def test_index_where_mirrors_the_sql() -> None:
    read = ReadFilter(
        store_id=1,
        scope=Scope(app_id="app", tenant_id=["u1", "u2"], agent_id="*", run_id="*"),
        memory_types=("fact",),
        metadata={"source": ("a", "b")},
    )
    assert index_where(read) == {
        "$and": [
            {"app_id": "app"},
            {"tenant_id": {"$in": ["u1", "u2"]}},
            {"memory_type": "fact"},
            {"md_source": {"$in": ["a", "b"]}},
        ]
    }
    single = ReadFilter(store_id=1, scope=Scope(app_id="app", tenant_id="*", agent_id="*", run_id="*"))
    assert index_where(single) == {"app_id": "app"}


def test_scope_tokens_match_their_read_expression() -> None:
    from memory_plugin.storage.sqlite.sql import scope_match, scope_tokens

    tokens = scope_tokens(7, Scope(app_id="app", tenant_id="u 1", agent_id="a", run_id="r")).split()
    assert len(tokens) == 3 and all(t.isalnum() for t in tokens)
    read = Scope(app_id="app", tenant_id=["u 1", "u2"], agent_id="*", run_id="r")
    expression = scope_match(ReadFilter(store_id=7, scope=read))
    assert expression is not None and expression.startswith('scope : ("t')
    assert tokens[0] in expression and tokens[2] in expression and tokens[1] not in expression
    # The same ids in another app or another store are other tokens.
    assert scope_tokens(7, Scope(app_id="app2", tenant_id="u 1", agent_id="a", run_id="r")).split()[0] != tokens[0]
    assert scope_tokens(8, Scope(app_id="app", tenant_id="u 1", agent_id="a", run_id="r")).split()[0] != tokens[0]
    everything = Scope(app_id="app", tenant_id="*", agent_id="*", run_id="*")
    assert scope_match(ReadFilter(store_id=7, scope=everything)) is None
