"""The VikingDB search shape: request -> our search arguments, our results -> its response, bad input named as
VikingDB spells it. The round trip runs on a real embedded store."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from memory_plugin import InvalidArgumentError, MemoryClient, Scope, SearchResults, Usage
from memory_plugin.server.vikingdb import VikingSearch, error_response, parse_search, search_response

# The "data" of the seed's Python sample, verbatim.
SAMPLE = {
    "collection_name": "my_first_memory_collection",
    "query": "你猜猜那个比赛最后谁赢了",
    "limit": 5,
    "filter": {"user_id": "user1", "memory_type": ["sys_event_v1", "sys_profile_v1"]},
}
MS_2026 = 1_780_000_000_000  # 2026-05-28T20:26:40Z


def parse(**changes: Any) -> VikingSearch:
    return parse_search({**SAMPLE, **changes}, app_id="app-x")


def with_filter(**changes: Any) -> VikingSearch:
    return parse(filter={**SAMPLE["filter"], **changes})


def test_the_seed_sample_request() -> None:
    search = parse_search(SAMPLE, app_id="app-x")
    assert search.collection_name == "my_first_memory_collection" and search.query == SAMPLE["query"]
    assert search.scope == Scope(app_id="app-x", tenant_id="user1", agent_id="*", run_id="*")
    assert search.memory_types == ("event", "fact", "message", "profile")
    assert search.search_kwargs() == {
        "top_k": 5,
        "memory_types": ["event", "fact", "message", "profile"],
        "filters": None,
        "start_time": None,
        "end_time": None,
    }


def test_ids_lists_groups_keys_and_times() -> None:
    search = with_filter(
        user_id=["u1", "u2"],
        assistant_id="bot",
        session_id=["s1"],
        group_id=["g1", "g2"],
        primary_key=["kb_id=1", "kb_id=x", "lang = zh", "w=0.5", "on=true"],
        memory_type="fact",
        start_time=MS_2026,
        end_time=MS_2026 + 1500,
    )
    assert search.scope == Scope(app_id="app-x", tenant_id=["u1", "u2"], agent_id="bot", run_id="s1")
    assert search.filters == {
        "group_id": ("g1", "g2"),
        "kb_id": ("1", 1, "x"),
        "lang": ("zh",),
        "w": ("0.5", 0.5),
        "on": ("true", True),
    }
    assert search.memory_types == ("fact",) and search.type_names == {"fact": "fact"}
    assert search.start_time == datetime(2026, 5, 28, 20, 26, 40, tzinfo=timezone.utc)
    assert search.end_time == datetime(2026, 5, 28, 20, 26, 41, 500000, tzinfo=timezone.utc)


def test_limit_defaults_to_10_and_is_served_as_at_most_50() -> None:
    assert parse_search({k: v for k, v in SAMPLE.items() if k != "limit"}, "app-x").top_k == 10
    assert parse(limit=5000).top_k == 50 and parse(limit=5000).limit == 5000
    assert parse(limit=50).top_k == 50


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"filter": None}, "filter"),
        ({"filter": {"user_id": "u"}}, "filter.memory_type"),
        ({"filter": {"memory_type": "x", "userid": "u"}}, "filter.userid"),
        ({"topk": 5}, "topk"),
        ({"limit": 0}, "limit"),
        ({"limit": 5001}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"limit": True}, "limit"),
        ({"collection_name": "bad name"}, "collection_name"),
        ({"collection_name": None}, "collection_name"),
        ({"project_name": 3}, "project_name"),
        ({"resource_id": "r-1"}, "resource_id"),
        ({"query": ""}, "query"),
        ({"query": "x" * 4001}, "query"),
        ({"query": ["q"]}, "query"),
    ],
)
def test_bad_requests_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse(**changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"user_id": ""}, "filter.user_id"),
        ({"user_id": ["a", 3]}, "filter.user_id[1]"),
        ({"user_id": []}, "filter.user_id"),
        ({"assistant_id": {"id": 1}}, "filter.assistant_id"),
        ({"session_id": ["s", "a\x00"]}, "filter.session_id[1]"),
        ({"group_id": []}, "filter.group_id"),
        ({"group_id": ["ok", "bad*"]}, "filter.group_id[1]"),
        ({"group_id": 7}, "filter.group_id"),
        ({"primary_key": "kb_id"}, "filter.primary_key[0]"),
        ({"primary_key": ["a=1", 2]}, "filter.primary_key[1]"),
        ({"primary_key": "memory_type=event"}, "filter.primary_key[0]"),
        ({"group_id": "g1", "primary_key": "group_id=g"}, "filter.primary_key[0]"),
        ({"primary_key": []}, "filter.primary_key"),
        ({"primary_key": "k=" + "v" * 2001}, "filter.primary_key.k"),
        ({"memory_type": ""}, "filter.memory_type"),
        ({"memory_type": []}, "filter.memory_type"),
        ({"memory_type": ["ok", "b a d"]}, "filter.memory_type[1]"),
        ({"start_time": -1}, "filter.start_time"),
        ({"start_time": 1.5}, "filter.start_time"),
        ({"end_time": "2026-01-01"}, "filter.end_time"),
        ({"end_time": 10**20}, "filter.end_time"),
        ({"start_time": MS_2026 + 1, "end_time": MS_2026}, "filter.start_time"),
    ],
)
def test_bad_filters_name_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        with_filter(**changes)
    assert caught.value.field == field


def test_missing_collection_and_query() -> None:
    without = {k: v for k, v in SAMPLE.items() if k != "collection_name"}
    with pytest.raises(InvalidArgumentError, match="collection_name: is required"):
        parse_search(without, "app-x")
    with pytest.raises(InvalidArgumentError, match="resource_id: memory stores are named here"):
        parse_search({**without, "resource_id": "r-1"}, "app-x")
    with pytest.raises(InvalidArgumentError, match="query: is required here"):
        parse_search({k: v for k, v in SAMPLE.items() if k != "query"}, "app-x")
    with pytest.raises(InvalidArgumentError) as caught:
        parse_search(["not", "a", "dict"], "app-x")
    assert caught.value.field == "request"


def test_round_trip_on_a_real_store(client: MemoryClient) -> None:
    store = client.create_memory_store("my_first_memory_collection")
    at = datetime(2026, 5, 28, 20, 26, 40, 123000, tzinfo=timezone.utc)
    scope = Scope(app_id="app-x", tenant_id="user1", agent_id="bot", run_id="s1")
    store.add(
        scope,
        messages=[{"role": "user", "content": "Who won the final match? The red team won the match"}],
        metadata={"group_id": "g1", "kb_id": 1},
        timestamp=at,
    )
    store.add(scope.with_(tenant_id="user2"), text="The blue team won the match", metadata={"group_id": "g1"})
    store.add(scope, text="Nothing about sports here", metadata={"group_id": "g2", "kb_id": 2})

    search = parse_search({**SAMPLE, "query": "who won the match", "limit": 5000}, app_id="app-x")
    results = store.search(search.scope, search.query, **search.search_kwargs())
    response = search_response(search, results)
    assert response["code"] == 0 and response["request_id"] == results.request_id
    assert "limit 5000 is served as 50" in response["message"]
    data = response["data"]
    assert data["collection_name"] == "my_first_memory_collection" and isinstance(data["token_usage"], int)
    assert data["count"] == len(data["result_list"]) == 2  # user2's memory is another tenant
    top = data["result_list"][0]
    assert set(top) == {
        "id",
        "score",
        "memory_type",
        "user_id",
        "assistant_id",
        "session_id",
        "group_id",
        "time",
        "status",
        "labels",
        "memory_info",
    }
    assert top["memory_info"]["text"] == "The red team won the match"  # what the turn states, without its question
    assert top["memory_type"] == "sys_event_v1"  # our "message", under the name the request used
    assert (top["user_id"], top["assistant_id"], top["session_id"], top["group_id"]) == (["user1"], ["bot"], "s1", "g1")
    assert top["time"] == 1_780_000_000_123 and top["memory_info"]["metadata"] == {"group_id": "g1", "kb_id": 1}
    assert {item["memory_type"] for item in data["result_list"]} == {"sys_event_v1", "sys_profile_v1"}  # a fact

    def ids(**filter_: Any) -> list[str]:
        found = parse_search({**SAMPLE, "query": "match sports", "filter": {**SAMPLE["filter"], **filter_}}, "app-x")
        hits = store.search(found.scope, found.query, **found.search_kwargs())
        return sorted(item["memory_info"]["text"] for item in search_response(found, hits)["data"]["result_list"])

    assert ids(group_id="g2") == ["Nothing about sports here"]
    assert ids(primary_key="kb_id=1") == ["The red team won the match"]
    assert ids(primary_key=["kb_id=1", "kb_id=2"], group_id=["g2"]) == ["Nothing about sports here"]
    assert ids(user_id=["user1", "user2"], memory_type="sys_profile_v1") == [
        "Nothing about sports here",
        "The blue team won the match",
    ]
    assert ids(start_time=1_780_000_000_000, end_time=1_780_000_000_200) == ["The red team won the match"]
    narrowed = dataclasses.replace(search, scope=search.scope.with_(tenant_id="user2"))  # as authorize() would
    hits = store.search(narrowed.scope, narrowed.query, **narrowed.search_kwargs())
    assert [h.memory.text for h in hits] == ["The blue team won the match"]


def test_small_limits_carry_no_note_and_errors_have_the_shape() -> None:
    assert "served as" not in search_response(parse(limit=50), _empty_results())["message"]
    assert error_response(400, "must be an integer from 1 to 5000, got 0", "req_1", "limit") == {
        "code": 400,
        "message": "must be an integer from 1 to 5000, got 0",
        "field": "limit",
        "data": None,
        "request_id": "req_1",
    }


def _empty_results() -> SearchResults:
    return SearchResults([], "req_0", Usage(query_tokens=3, candidates=0))
