"""What every framework adapter binds to (``memory_plugin.binding``): the recall options and the scope and metadata
rules, framework-neutral and pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from memory_plugin import InvalidArgumentError, InvalidScopeError, Scope, SearchHit
from memory_plugin.binding import (
    DEFAULT_READ_SCOPE,
    RecallOptions,
    check_read_overrides,
    contains,
    recall_query,
    write_metadata,
    write_scope,
)
from tests.conftest import memory_value

RUN = Scope(app_id="app", tenant_id="u1", agent_id="bot", run_id="s1")


def hit(text: str, score: float, **metadata: Any) -> SearchHit:
    return SearchHit(memory=memory_value(text, metadata=metadata), score=score)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": 51}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"min_score": 1.5}, "min_score"),
        ({"min_score": "high"}, "min_score"),
        ({"rerank": "yes"}, "rerank"),
        ({"memory_types": ["bad type!"]}, "memory_types"),
        ({"filters": {"run_id": "x"}}, "filters"),
        ({"start_time": "tomorrow"}, "start_time"),
        ({"start_time": "2024-02-01", "end_time": "2024-01-01"}, "start_time"),
    ],
)
def test_bad_recall_options_fail_when_made_naming_the_option(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as error:
        RecallOptions(**options)
    assert error.value.field == field


def test_recall_options_keep_their_positional_order_and_a_callers_lists_cannot_change_them() -> None:
    # langchain_memory_plugin.RecallOptions(top_k, min_score, memory_types, filters, rerank) is public API.
    types, filters = ["fact"], {"source": ["chat"]}
    options = RecallOptions(3, 0.2, types, filters, False)
    assert (options.top_k, options.min_score, options.rerank) == (3, 0.2, False)
    types.append("event")
    filters["source"].append("mail")
    options.search_arguments()["filters"]["source"].append("leaked")  # each search gets arguments of its own
    assert options.search_arguments() == {
        "top_k": 3,
        "rerank": False,
        "memory_types": ["fact"],
        "filters": {"source": ["chat"]},
    }


def test_search_arguments_ask_for_extra_hits_up_to_the_store_limit() -> None:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    options = RecallOptions(top_k=48, start_time="2024-01-01T00:00:00Z")
    assert options.search_arguments(extra=5) == {"top_k": 50, "rerank": True, "start_time": start}


def test_keep_drops_weak_and_skipped_hits_and_keeps_at_most_top_k() -> None:
    hits = [hit("stand in", 0.9, stand_in=True), hit("one", 0.8), hit("two", 0.6), hit("three", 0.5), hit("weak", 0.1)]
    options = RecallOptions(top_k=2, min_score=0.3)
    assert [h.memory.text for h in options.keep(hits)] == ["stand in", "one"]
    kept = options.keep(hits, lambda h: bool(h.memory.metadata.get("stand_in")))
    assert [h.memory.text for h in kept] == ["one", "two"]


def test_a_recall_query_is_stripped_and_cut_to_the_store_limit() -> None:
    assert recall_query("  coffee \n") == "coffee"
    assert recall_query("   ") == "" and recall_query(None) == ""
    assert recall_query("q" * 5000) == "q" * 4000


def test_a_write_scope_must_be_one_concrete_run_and_the_error_names_the_adapter() -> None:
    assert write_scope("app/u1/bot/s1", "MyAdapter") == RUN
    with pytest.raises(InvalidScopeError, match=r"scope\.run_id: MyAdapter needs a concrete id") as plain:
        write_scope(RUN.with_(run_id="*"), "MyAdapter")
    assert "instead" not in str(plain.value)
    with pytest.raises(InvalidScopeError, match=r"MyAdapter writes to this scope; .* with recall_scope= instead"):
        write_scope(
            {"app_id": "app", "tenant_id": "u1", "agent_id": "bot", "run_id": ["s1", "s2"]}, "MyAdapter", "recall_scope"
        )
    with pytest.raises(InvalidScopeError, match="missing segment"):
        write_scope({"app_id": "app"}, "MyAdapter")


def test_read_overrides_are_checked_once_and_frozen() -> None:
    overrides = check_read_overrides({"run_id": "*", "agent_id": ["a", "b"]})
    assert RUN.with_(**overrides) == Scope(app_id="app", tenant_id="u1", agent_id=["a", "b"], run_id="*")
    assert dict(DEFAULT_READ_SCOPE) == {"run_id": "*"}
    with pytest.raises(TypeError):
        overrides["run_id"] = "s2"  # type: ignore[index]
    with pytest.raises(InvalidScopeError, match=r"search_scope: unknown segment\(s\) \['user'\]"):
        check_read_overrides({"user": "*"}, "search_scope")
    with pytest.raises(InvalidScopeError, match="app_id"):
        check_read_overrides({"app_id": "*"})


def test_contains_follows_wildcards_and_id_lists() -> None:
    read = RUN.with_(run_id="*", agent_id=["bot", "planner"])
    assert contains(read, RUN) and contains(read, RUN.with_(agent_id="planner", run_id="s9"))
    assert not contains(read, RUN.with_(agent_id="other")) and not contains(read, RUN.with_(tenant_id="u2"))


def test_write_metadata_leaves_room_for_the_adapters_own_keys() -> None:
    assert dict(write_metadata({"channel": "cli"}, "my_", own_keys=3)) == {"channel": "cli"}
    assert write_metadata(None, "my_") == {}
    with pytest.raises(InvalidArgumentError, match="at most 13 keys here"):
        write_metadata({f"k{i}": i for i in range(14)}, "my_", own_keys=3)
    with pytest.raises(InvalidArgumentError, match=r"keys starting with 'my_' are the adapter's own: \['my_role'\]"):
        write_metadata({"my_role": "user"}, "my_")
    with pytest.raises(InvalidArgumentError, match="reserved"):
        write_metadata({"run_id": "other"}, "my_")
