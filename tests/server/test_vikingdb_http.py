"""VikingDB's memory search through a running memory server: the seed's Python sample runs unchanged but for the
URL (the key comes from ``MEMORY_API_KEY``, as the sample reads it), and answers in the seed's response shape;
every refusal on this route is in VikingDB's shape too. Real model, real server."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_plugin.embedding import Embedder
from tests.server_harness import RunningServer, running_server

COLLECTION = "my_first_memory_collection"
RESULT_FIELDS = {
    "id", "score", "memory_type", "user_id", "assistant_id", "session_id", "group_id", "time", "status", "labels",
    "memory_info",
}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, real_embedder: Embedder) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("viking"), real_embedder) as running, running.client() as client:
        store = client.create_memory_store(COLLECTION)
        for user, words in (("user1", "昨天的足球比赛最后红队赢了"), ("user2", "我喜欢喝咖啡")):
            store.add(
                f"app-001/{user}/assistant/chat-1",
                messages=[{"role": "user", "content": words}, {"role": "assistant", "content": "好的,我记住了"}],
                metadata={"group_id": "team-a"},
            )
        yield running


def run_the_seed_sample(url: str) -> None:
    # The seed's sample, verbatim but for the URL.
    # fmt: off
    import os  # noqa: I001 (the seed's order)
    import requests
    import json

    API_KEY = os.getenv("MEMORY_API_KEY", "your_key")
    url = url + "/api/memory/search"

    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "Content-Type": "application/json"
    }

    data = {
        "collection_name": "my_first_memory_collection",
        "query": "你猜猜那个比赛最后谁赢了",
        "limit": 5,
        "filter": {
            "user_id": "user1",
            "memory_type": ["sys_event_v1", "sys_profile_v1"]
        }
    }

    response = requests.post(url, headers=headers, data=json.dumps(data))
    print("Status Code:", response.status_code)
    print("Response:", response.text)
    # fmt: on


def test_the_seed_sample_runs_and_answers_in_the_seed_shape(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MEMORY_API_KEY", f"{server.key.key_id}.{server.secret}")
    run_the_seed_sample(server.url)
    status_line, response_line = capsys.readouterr().out.splitlines()
    assert status_line == "Status Code: 200"
    answer = json.loads(response_line.removeprefix("Response: "))
    assert set(answer) == {"code", "message", "data", "request_id"}
    assert answer["code"] == 0 and answer["message"] == "success" and answer["request_id"].startswith("req_")
    data = answer["data"]
    assert set(data) == {"collection_name", "count", "result_list", "token_usage"}
    assert data["collection_name"] == COLLECTION and data["count"] == len(data["result_list"]) == 2
    assert isinstance(data["token_usage"], int) and data["token_usage"] > 0
    best = data["result_list"][0]
    assert set(best) == RESULT_FIELDS
    assert best["memory_info"]["text"] == "昨天的足球比赛最后红队赢了"  # the match, not the coffee
    for result in data["result_list"]:
        assert result["user_id"] == ["user1"] and result["assistant_id"] == ["assistant"]
        assert result["session_id"] == "chat-1" and result["group_id"] == "team-a"
        assert result["memory_type"] == "sys_event_v1"  # conversation turns are events, named as asked
        assert isinstance(result["time"], int) and result["time"] > 1_700_000_000_000  # milliseconds
        assert 0 <= result["score"] <= 1 and result["status"] is None and result["labels"] is None


def viking(server: RunningServer, body: bytes, authorization: str | None = None) -> tuple[int, dict[str, Any]]:
    import requests

    token = authorization or f"Bearer {server.key.key_id}.{server.secret}"
    headers = {"Authorization": token, "Content-Type": "application/json"}
    response = requests.post(server.url + "/api/memory/search", headers=headers, data=body, timeout=60)
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "authorization", "status", "field"),
    [
        (b"\x00 not JSON", None, 400, "body"),
        (b"[1, 2]", None, 400, "request"),
        (b'{"collection_name": "x", "query": "q"}', None, 400, "filter"),
        (b'{"collection_name": "nope", "query": "q", "filter": {"memory_type": "fact"}}', None, 404, None),
        (b'{"collection_name": "x", "query": "q", "filter": {"memory_type": "fact"}}', "Bearer mpk_x.y", 401, None),
    ],
)
def test_refusals_are_in_vikingdb_shape(
    server: RunningServer, body: bytes, authorization: str | None, status: int, field: str | None
) -> None:
    got, answer = viking(server, body, authorization)
    assert got == status and answer["code"] == status  # VikingDB: 0 is success, anything else an error
    assert set(answer) == {"code", "message", "field", "data", "request_id"}
    assert answer["field"] == field and answer["data"] is None and answer["message"]


def test_a_key_of_another_app_finds_nothing_of_this_app(server: RunningServer) -> None:
    """VikingDB has no app: the app is the key's, so a key of another app searches only that app's memories."""
    key_id, secret = server.new_key("app-002")
    body = {"collection_name": COLLECTION, "query": "比赛", "filter": {"memory_type": "sys_event_v1"}}
    status, answer = viking(server, json.dumps(body).encode(), f"Bearer {key_id}.{secret}")
    assert status == 200 and answer["data"]["result_list"] == []


def test_the_sample_here_is_the_seeds() -> None:
    """Every token of the seed's sample (shared/seeds, beside the repository) is in ours, but the seed's URL."""
    seed = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "vikingdb-memory-search-api.txt"
    text = seed.read_text()
    ours = inspect.getsource(run_the_seed_sample)
    missing = [token for token in text[text.index("import os") :].split() if token not in ours]
    assert missing == ['"https://api-knowledgebase.mlp.cn-beijing.volces.com/api/memory/search"'], missing
