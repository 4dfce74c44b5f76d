"""The Tablestore SDK's dict API over an embedded MemoryClient (real SQLite and Chroma in a temp folder), and
constructed exactly as the seed does it (endpoint, AccessKey ID, AccessKey secret, instance name) against a real
memory server on loopback.

The seed document's code samples are copied verbatim but for the import and the client construction; the ones
that name ``mem-001``, an id this store never made, are run as written (and answer "not found", as any store
would) and then again with a real id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import (
    AsyncMemoryClient,
    ConnectionFailedError,
    InvalidArgumentError,
    InvalidScopeError,
    MemoryClient,
    MemoryNotFoundError,
    MemoryStoreNotFoundError,
)
from memory_plugin.compat.tablestore import OPERATIONS, AsyncOTSClient, Call, OTSClient, to_call
from memory_plugin.embedding import Embedder
from tests.server_harness import free_port, running_server

SCOPE = {"appId": "app-001", "tenantId": "user-001", "agentId": "assistant", "runId": "session-001"}
S = {"memoryStoreName": "s", "scope": SCOPE}
UNIT_FIELDS = {
    "id",
    "text",
    "scope",
    "memory_type",
    "speaker",
    "metadata",
    "created_at",
    "updated_at",
    "event_time",
    "source_message_ids",
}


@pytest.fixture(params=["embedded", "server"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path, fake_embedder: Embedder) -> Iterator[Any]:
    """An embedded MemoryClient, or a running memory server."""
    if request.param == "embedded":
        with MemoryClient(path=tmp_path / "data", embedder=fake_embedder) as c:
            yield c
        return
    with running_server(tmp_path / "data", fake_embedder) as server:
        yield server


@pytest.fixture
def memory_client(deployment: Any) -> Iterator[MemoryClient]:
    if isinstance(deployment, MemoryClient):
        yield deployment
        return
    with deployment.client() as c:
        yield c


@pytest.fixture
def client(deployment: Any, memory_client: MemoryClient) -> Iterator[OTSClient]:
    if isinstance(deployment, MemoryClient):
        yield OTSClient.over(memory_client)
        return
    # The seed's own constructor, but for the endpoint: our server's URL and an access key it issued.
    with OTSClient(deployment.url, deployment.key.key_id, deployment.secret, "instance") as seeded:
        yield seeded


def check_unit(unit: dict[str, Any]) -> None:
    assert set(unit) == UNIT_FIELDS
    assert set(unit["scope"]) == {"app_id", "tenant_id", "agent_id", "run_id"}
    assert isinstance(unit["created_at"], str) and isinstance(unit["metadata"], dict)


def with_id(sample: dict[str, Any], memory_id: str) -> dict[str, Any]:
    return {**sample, "memoryId": memory_id}


# fmt: off
def test_every_seed_sample(
    client: OTSClient, memory_client: MemoryClient, capsys: pytest.CaptureFixture[str]
) -> None:
    created = client.create_memory_store({
        "memoryStoreName": "agent_memory",
        "description": "Agent 長期記憶庫",
    })
    assert created == {"memoryStoreName": "agent_memory", "description": "Agent 長期記憶庫"}

    added = client.add_memories({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "assistant",
            "runId": "session-001",
        },
        "messages": [
            {"role": "user", "content": "我喜歡喝咖啡"},
            {"role": "assistant", "content": "好的,我記住了"},
        ],
        "metadata": {
            "source": "chat"
        },
        "sync": True,
    })
    assert added["pending"] is False and len(added["messageIds"]) == 2 and added["requestId"]
    assert [m["text"] for m in added["memories"]] == ["我喜歡喝咖啡", "好的,我記住了"]
    for unit in added["memories"]:
        check_unit(unit)
        assert unit["metadata"] == {"source": "chat"} and unit["scope"]["tenant_id"] == "user-001"

    text_added = client.add_memories({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "assistant",
            "runId": "session-001",
        },
        "text": "使用者喜歡喝咖啡,偏好簡潔的回答風格",
    })
    assert text_added["pending"] is True and text_added["memories"] == []  # the seed's default: sync=False
    assert memory_client.get_memory_store("agent_memory").flush(timeout=30)

    result = client.search_memories({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "*",
            "runId": "*",
        },
        "query": "使用者喜歡什麼飲品",
        "topK": 5,
        "enableRerank": True,
    })

    for item in result.get("results", []):
        unit = item["unit"]
        print(unit["id"], unit["text"], item["score"])

    printed = capsys.readouterr().out.splitlines()
    assert len(result["results"]) == 3 and len(printed) == 3 and result["requestId"]
    assert {item["unit"]["text"] for item in result["results"]} == {
        "我喜歡喝咖啡",
        "好的,我記住了",
        "使用者喜歡喝咖啡,偏好簡潔的回答風格",
    }
    assert all(0 <= item["score"] <= 1 for item in result["results"])
    assert set(result["usage"]) == {"queryTokens", "candidates"}
    for item in result["results"]:
        check_unit(item["unit"])
    top = result["results"][0]["unit"]
    assert printed[0].startswith(f"{top['id']} {top['text']} ")

    result = client.list_memories({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "*",
            "agentId": "*",
            "runId": "*",
        },
        "limit": 20,
    })
    assert len(result["memories"]) == 3 and result["nextToken"] is None
    memory_id = result["memories"][0]["id"]

    get_sample = {
        "memoryStoreName": "agent_memory",
        "memoryId": "mem-001",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "assistant",
            "runId": "session-001",
        },
    }
    with pytest.raises(MemoryNotFoundError):
        memory = client.get_memory({
            "memoryStoreName": "agent_memory",
            "memoryId": "mem-001",
            "scope": {
                "appId": "app-001",
                "tenantId": "user-001",
                "agentId": "assistant",
                "runId": "session-001",
            },
        })
    memory = client.get_memory(with_id(get_sample, memory_id))
    check_unit(memory["memory"])
    assert memory["memory"]["id"] == memory_id and memory["memory"]["text"] == "我喜歡喝咖啡"

    update_sample = {
        "memoryStoreName": "agent_memory",
        "memoryId": "mem-001",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "assistant",
            "runId": "session-001",
        },
        "text": "使用者偏好咖啡,且喜歡簡潔回答",
        "metadata": {
            "source": "manual"
        },
    }
    with pytest.raises(MemoryNotFoundError):
        client.update_memory(update_sample)
    updated = client.update_memory(with_id(update_sample, memory_id))["memory"]
    assert updated["id"] == memory_id and updated["text"] == "使用者偏好咖啡,且喜歡簡潔回答"
    assert updated["metadata"] == {"source": "manual"}

    with pytest.raises(MemoryNotFoundError):
        client.delete_memory({
            "memoryStoreName": "agent_memory",
            "memoryId": "mem-001",
            "scope": {
                "appId": "app-001",
                "tenantId": "user-001",
                "agentId": "assistant",
                "runId": "session-001",
            },
        })
    assert client.delete_memory(with_id(get_sample, memory_id)) == {}
    with pytest.raises(MemoryNotFoundError):
        client.get_memory(with_id(get_sample, memory_id))

    messages = client.list_memory_store_messages({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "user-001",
            "agentId": "assistant",
            "runId": "session-001",
        },
        "limit": 100,
    })
    assert [(m["role"], m["content"]) for m in messages["messages"]] == [
        ("user", "我喜歡喝咖啡"),
        ("assistant", "好的,我記住了"),
    ]
    assert messages["nextToken"] is None and messages["messages"][0]["metadata"] == {"source": "chat"}

    requests = client.list_memory_store_requests({
        "memoryStoreName": "agent_memory",
        "scope": {
            "appId": "app-001",
            "tenantId": "*",
            "agentId": "*",
            "runId": "*",
        },
        "operation": "AddMemories",
        "limit": 50,
    })
    assert [r["operation"] for r in requests["requests"]] == ["AddMemories", "AddMemories"]
    assert {r["request_id"] for r in requests["requests"]} == {added["requestId"], text_added["requestId"]}
    assert all(r["outcome"] == "ok" for r in requests["requests"]) and requests["nextToken"] is None


# fmt: on


def test_the_async_seed_sample(tmp_path: Path, fake_embedder: Embedder, capsys: pytest.CaptureFixture[str]) -> None:
    memory_client = AsyncMemoryClient(path=tmp_path / "data", embedder=fake_embedder)
    asyncio.run(memory_client.create_memory_store("agent_memory"))

    # fmt: off
    async def main():  # type: ignore[no-untyped-def]
        async with AsyncOTSClient.over(memory_client) as client:
            await client.add_memories({
                "memoryStoreName": "agent_memory",
                "scope": {
                    "appId": "app-001",
                    "tenantId": "user-001",
                    "agentId": "assistant",
                    "runId": "session-001",
                },
                "text": "使用者偏好簡潔的回答風格",
            })

            result = await client.search_memories({
                "memoryStoreName": "agent_memory",
                "scope": {
                    "appId": "app-001",
                    "tenantId": "user-001",
                    "agentId": "*",
                    "runId": "*",
                },
                "query": "使用者偏好什麼回答風格",
                "topK": 5,
            })
            print(result)

    asyncio.run(main())
    # fmt: on
    printed = capsys.readouterr().out
    assert printed.startswith("{'results': [") and "'requestId': 'req_" in printed

    async def after() -> dict[str, Any]:  # the client given to over() stays open; the text is extracted
        store = await memory_client.get_memory_store("agent_memory")
        assert await store.flush(timeout=30)
        client = AsyncOTSClient.over(memory_client)
        found = await client.search_memories({"memoryStoreName": "agent_memory", "scope": SCOPE, "query": "回答風格"})
        await memory_client.close()
        return found

    [hit] = asyncio.run(after())["results"]
    assert hit["unit"]["text"] == "使用者偏好簡潔的回答風格" and hit["unit"]["memory_type"] == "fact"


def test_the_async_seed_sample_against_a_server(
    tmp_path: Path, fake_embedder: Embedder, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_server(tmp_path / "data", fake_embedder) as server:
        with server.client() as setup:
            setup.create_memory_store("agent_memory")
        endpoint, key_id, secret = server.url, server.key.key_id, server.secret

        # fmt: off
        async def main():  # type: ignore[no-untyped-def]
            async with AsyncOTSClient(
                endpoint,
                key_id,
                secret,
                "<instance-name>",
            ) as client:
                await client.add_memories({
                    "memoryStoreName": "agent_memory",
                    "scope": {
                        "appId": "app-001",
                        "tenantId": "user-001",
                        "agentId": "assistant",
                        "runId": "session-001",
                    },
                    "text": "使用者偏好簡潔的回答風格",
                })

                result = await client.search_memories({
                    "memoryStoreName": "agent_memory",
                    "scope": {
                        "appId": "app-001",
                        "tenantId": "user-001",
                        "agentId": "*",
                        "runId": "*",
                    },
                    "query": "使用者偏好什麼回答風格",
                    "topK": 5,
                })
                print(result)

        asyncio.run(main())
        # fmt: on
    printed = capsys.readouterr().out
    assert printed.startswith("{'results': [") and "'requestId': 'req_" in printed


def test_store_management(client: OTSClient) -> None:
    client.create_memory_store({"memoryStoreName": "a"})
    info = client.get_memory_store({"memoryStoreName": "a"})
    assert info["memoryStoreName"] == "a" and info["description"] == "" and info["dimension"] == 256
    updated = client.update_memory_store({"memoryStoreName": "a", "description": "new", "auditRetentionDays": 30})
    assert updated["description"] == "new" and updated["auditRetentionDays"] == 30
    assert [s["memoryStoreName"] for s in client.list_memory_stores()["memoryStores"]] == ["a"]
    assert client.delete_memory_store({"memoryStoreName": "a"}) == {}
    assert client.list_memory_stores({}) == {"memoryStores": []}
    with pytest.raises(MemoryStoreNotFoundError):
        client.get_memory_store({"memoryStoreName": "a"})
    with pytest.raises(MemoryStoreNotFoundError):
        client.search_memories({"memoryStoreName": "a", "scope": SCOPE, "query": "x"})


def test_pages_filters_and_types(client: OTSClient) -> None:
    client.create_memory_store({"memoryStoreName": "s"})
    for i in range(3):
        client.add_memories({**S, "text": f"fact {i}", "metadata": {"n": i}, "sync": True})
    request = {**S, "limit": 2}
    first = client.list_memories(request)
    second = client.list_memories({**request, "nextToken": first["nextToken"]})
    assert [m["text"] for m in first["memories"] + second["memories"]] == ["fact 0", "fact 1", "fact 2"]
    assert second["nextToken"] is None
    filtered = client.list_memories({**S, "metadata": {"n": [0, 2]}})
    assert [m["text"] for m in filtered["memories"]] == ["fact 0", "fact 2"]
    found = client.search_memories({**S, "query": "fact", "metadata": {"n": 1}, "memoryTypes": ["fact"]})
    assert [r["unit"]["text"] for r in found["results"]] == ["fact 1"]


@pytest.mark.parametrize(
    ("method", "request_", "field", "error"),
    [
        ("search_memories", {**S, "query": "q", "topK": 0}, "topK", None),
        ("search_memories", {**S, "query": "q", "topk": 5}, "topk", None),
        ("search_memories", {**S, "query": "q", "enableRerank": "y"}, "enableRerank", None),
        ("search_memories", {**S, "query": "q", "metadata": {"a": {}}}, "metadata.a", None),
        ("search_memories", S, "query", None),
        (
            "search_memories",
            {"memoryStoreName": "s", "scope": {**SCOPE, "tenantId": ""}, "query": "q"},
            "scope.tenantId",
            InvalidScopeError,
        ),
        (
            "add_memories",
            {"memoryStoreName": "s", "scope": {**SCOPE, "runId": "*"}, "text": "t"},
            "scope.runId",
            InvalidScopeError,
        ),
        ("add_memories", {**S, "text": "t", "sync": "no"}, "sync", None),
        ("add_memories", {**S, "text": "t", "idempotencyKey": ""}, "idempotencyKey", None),
        ("add_memories", {"scope": SCOPE, "text": "t"}, "memoryStoreName", None),
        ("add_memories", {**S, "text": "t", "messages": []}, "messages", None),
        ("list_memories", {**S, "limit": 101}, "limit", None),
        ("list_memories", {**S, "nextToken": "garbage"}, "nextToken", None),
        ("list_memories", {**S, "startTime": "yesterday"}, "startTime", None),
        (
            "get_memory",
            {"memoryStoreName": "s", "scope": {**SCOPE, "agentId": ["a", "b"]}, "memoryId": "m"},
            "scope.agentId",
            InvalidScopeError,
        ),
        ("get_memory", {**S, "memoryId": 7}, "memoryId", None),
        ("create_memory_store", {"memoryStoreName": "bad name"}, "memoryStoreName", None),
        ("create_memory_store", ["memoryStoreName"], "request", None),
    ],
)
def test_errors_name_the_seed_field(
    client: OTSClient,
    method: str,
    request_: Any,
    field: str,
    error: type[InvalidArgumentError] | None,
) -> None:
    client.create_memory_store({"memoryStoreName": "s"})
    with pytest.raises(error or InvalidArgumentError) as caught:
        getattr(client, method)(request_)
    assert caught.value.field == field
    assert client.list_memories({"memoryStoreName": "s", "scope": {**SCOPE, "tenantId": "*"}})["memories"] == []


def test_translation_is_pure() -> None:
    """The seed dict becomes one call on our API, with the seed's defaults where they differ from ours."""
    call = to_call(OPERATIONS["add_memories"], {**S, "text": "t"})
    assert call.method == "add" and call.store == "s" and call.on_store
    assert call.args[0].tenant_id == "user-001" and call.kwargs == {"text": "t", "sync": False}
    search = to_call(
        OPERATIONS["search_memories"],
        {**S, "query": "q", "topK": 3, "enableRerank": False, "metadata": {"a": 1}},
    )
    assert search.args[1:] == ("q",) and search.kwargs == {"top_k": 3, "rerank": False, "filters": {"a": 1}}
    update = to_call(OPERATIONS["update_memory"], {**S, "memoryId": "m", "text": "x"})
    assert update.args[1:] == ("m",) and update.kwargs == {"text": "x"}
    assert to_call(OPERATIONS["create_memory_store"], {"memoryStoreName": "s"}) == Call(
        "create_memory_store", "s", False, ("s",), {}
    )
    assert to_call(OPERATIONS["list_memory_stores"], {}) == Call("list_memory_stores", None, False)


def test_over_leaves_the_client_open(memory_client: MemoryClient) -> None:
    with OTSClient.over(memory_client) as client:
        client.create_memory_store({"memoryStoreName": "s"})
    assert memory_client.get_memory_store("s").name == "s"  # still usable


def test_endpoint_constructor_validates_and_never_shows_the_secret() -> None:
    """The seed constructor is validated at once and keeps the secret out of its repr; it builds the remote
    MemoryClient on first use: a server that is not there is a clear error without the secret."""
    client = OTSClient(f"http://127.0.0.1:{free_port()}", "mpk_abcdefghijklmnopqrst", "the-secret-value", "instance")
    assert "the-secret-value" not in repr(client) and "mpk_abcdefghijklmnopqrst" in repr(client)
    client.close()  # nothing built yet: nothing to close
    with pytest.raises(ConnectionFailedError) as caught:
        client.list_memory_stores()
    assert "the-secret-value" not in str(caught.value)
    for args, field in (
        (("127.0.0.1:8080", "id", "secret"), "endpoint"),
        (("http://h", "", "secret"), "access_key_id"),
        (("http://h", "id", None), "access_key_secret"),
    ):
        with pytest.raises(InvalidArgumentError) as bad:
            OTSClient(*args)  # type: ignore[arg-type]
        assert bad.value.field == field
    asynchronous = AsyncOTSClient(f"http://127.0.0.1:{free_port()}", "id", "the-secret-value")
    assert "the-secret-value" not in repr(asynchronous)
    with pytest.raises(ConnectionFailedError) as caught:
        asyncio.run(asynchronous.list_memory_stores())
    assert "the-secret-value" not in str(caught.value)
