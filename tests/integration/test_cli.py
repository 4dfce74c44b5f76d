"""The command line, driven through ``main`` in-process (real model, real storage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from memory_plugin.cli import main

pytestmark = pytest.mark.model


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_search_list_messages_requests_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path)
    scope = "app/user-1/bot/run-1"
    code, out, _ = run(
        capsys,
        "--path",
        path,
        "add",
        "--store",
        "s",
        "--scope",
        scope,
        "--message",
        "user:I like green tea",
        "--message",
        "assistant:Green tea it is",
        "--metadata",
        "n=1",
    )
    assert code == 0 and "I like green tea" in out
    code, out, _ = run(
        capsys,
        "--path",
        path,
        "--json",
        "search",
        "--store",
        "s",
        "--scope",
        "app/user-1/*/*",
        "what does the user drink",
    )
    hits = json.loads(out)["items"]
    assert code == 0 and hits[0]["text"] == "I like green tea" and hits[0]["metadata"] == {"n": 1}
    code, out, _ = run(capsys, "--path", path, "add", "--store", "s", "--scope", scope, "--text", "Likes jazz")
    code, out, _ = run(capsys, "--path", path, "list", "--store", "s", "--scope", "app/*/*/*", "--limit", "2")
    assert "next cursor:" in out and "I like green tea" in out
    code, out, _ = run(capsys, "--path", path, "--json", "messages", "--store", "s", "--scope", scope)
    assert [m["content"] for m in json.loads(out)["items"]] == ["I like green tea", "Green tea it is"]
    code, out, _ = run(
        capsys, "--path", path, "requests", "--store", "s", "--scope", "app/*/*/*", "--operation", "AddMemories"
    )
    assert out.count("AddMemories") == 2
    code, out, _ = run(capsys, "--path", path, "stores")
    assert "all-MiniLM-L6-v2" in out


def test_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--path", str(tmp_path), "search", "--store", "missing", "--scope", "a/b/*/*", "q")
    assert code == 2 and "MemoryStoreNotFoundError" in err
    run(capsys, "--path", str(tmp_path), "stores", "--create", "s")
    code, _, err = run(
        capsys, "--path", str(tmp_path), "search", "--store", "s", "--scope", "a/b/*/*", "q", "--top-k", "99"
    )
    assert code == 2 and "top_k" in err
    code, _, err = run(
        capsys, "--path", str(tmp_path), "add", "--store", "s", "--scope", "a/b/*/r", "--text", "x", "--scope", "bad"
    )
    assert code == 2 and "UsageError" in err and "app/tenant/agent/run" in err and "Traceback" not in err


def cli_json(capsys: pytest.CaptureFixture[str], path: Path, *argv: str) -> tuple[int, Any]:
    code, out, _ = run(capsys, "--path", str(path), "--json", *argv)
    return code, json.loads(out)


def test_get_update_history_delete_match_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scope = "app/user-1/bot/run-1"
    code, added = cli_json(capsys, tmp_path, "add", "--store", "s", "--scope", scope, "--text", "Likes jazz")
    memory_id = added["items"][0]["id"]
    code, got = cli_json(capsys, tmp_path, "get", "--store", "s", "--scope", scope, memory_id)
    assert code == 0 and got["items"][0]["text"] == "Likes jazz" and got["items"][0]["scope"] == scope
    code, updated = cli_json(
        capsys, tmp_path, "update", "--store", "s", "--scope", scope, memory_id, "--text", "Likes blues",
        "--metadata", "stars=5",
    )  # fmt: skip
    assert (
        code == 0 and updated["items"][0]["text"] == "Likes blues" and updated["items"][0]["metadata"] == {"stars": 5}
    )
    code, history = cli_json(capsys, tmp_path, "history", "--store", "s", "--scope", scope, memory_id)
    assert [(e["event"], e["new_text"]) for e in history["items"]] == [
        ("created", "Likes jazz"),
        ("updated", "Likes blues"),
    ]
    code, deleted = cli_json(capsys, tmp_path, "delete", "--store", "s", "--scope", scope, memory_id)
    assert code == 0 and deleted["items"] == [{"deleted": memory_id}]
    code, error = cli_json(capsys, tmp_path, "get", "--store", "s", "--scope", scope, memory_id)
    assert code == 2 and error["error"]["type"] == "MemoryNotFoundError"


def test_delete_all_needs_yes_and_one_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for tenant in ("user-1", "user-2"):
        cli_json(
            capsys, tmp_path, "add", "--store", "s", "--scope", f"app/{tenant}/bot/r", "--message", "user:I like tea"
        )
    code, error = cli_json(capsys, tmp_path, "delete-all", "--store", "s", "--scope", "app/user-1/*/*")
    assert code == 2 and error["error"]["field"] == "--yes"
    code, error = cli_json(capsys, tmp_path, "delete-all", "--store", "s", "--scope", "app/*/*/*", "--yes")
    assert code == 2 and error["error"]["field"] == "scope.tenant_id"
    code, erased = cli_json(capsys, tmp_path, "delete-all", "--store", "s", "--scope", "app/user-1/*/*", "--yes")
    assert code == 0 and erased["items"][0]["memories"] == 1 and erased["items"][0]["messages"] == 1
    code, left = cli_json(capsys, tmp_path, "list", "--store", "s", "--scope", "app/*/*/*")
    assert [m["scope"] for m in left["items"]] == ["app/user-2/bot/r"]


def test_errors_under_json_are_json_and_hints_name_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli_json(capsys, tmp_path, "stores", "--create", "s")
    code, error = cli_json(capsys, tmp_path, "search", "--store", "nope", "--scope", "a/b/*/*", "q")
    assert code == 2 and error["error"]["type"] == "MemoryStoreNotFoundError"
    assert "memory-plugin stores --create nope" in error["error"]["message"]
    assert "create_memory_store" not in error["error"]["message"]
    code, error = cli_json(capsys, tmp_path, "search", "--store", "s", "--scope", "a/b/*/*", "q", "--top-k", "0")
    assert code == 2 and error["error"] == {"type": "InvalidArgumentError", "message": error["error"]["message"],
                                            "field": "top_k"}  # fmt: skip
    code, error = cli_json(capsys, tmp_path, "search", "--store", "s")
    assert code == 2 and error["error"]["type"] == "UsageError" and "--scope" in error["error"]["message"]
    code, error = cli_json(capsys, tmp_path, "stores", "--create", "s")
    assert code == 2 and "memory-plugin stores --update s" in error["error"]["message"]


def test_read_commands_create_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "never"
    for argv in (("stores",), ("list", "--store", "s", "--scope", "a/*/*/*"), ("search", "--store", "s",
                 "--scope", "a/b/*/*", "coffee")):  # fmt: skip
        code, _, err = run(capsys, "--path", str(home), *argv)
        assert code == 2 and "memory-plugin add" in err
    assert not home.exists()
    cli_json(capsys, home, "stores", "--create", "kept")
    code, _, _ = run(capsys, "--path", str(home), "list", "--store", "other", "--scope", "a/*/*/*")
    code, stores = cli_json(capsys, home, "stores")
    assert code == 0 and [s["name"] for s in stores["items"]] == ["kept"]


def test_stores_retention_prune_and_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stores = cli_json(capsys, tmp_path, "stores", "--create", "s", "--audit-retention-days", "30")
    assert code == 0 and stores["items"][0]["audit_retention_days"] == 30
    code, stores = cli_json(capsys, tmp_path, "stores", "--update", "s", "--history-retention-days", "7")
    assert stores["items"][0]["history_retention_days"] == 7 and stores["items"][0]["audit_retention_days"] == 30
    code, pruned = cli_json(capsys, tmp_path, "prune", "--store", "s")
    assert code == 0 and pruned["items"] == [{"requests": 0, "history": 0, "idempotency_keys": 0}]
    code, jobs = cli_json(capsys, tmp_path, "jobs", "--store", "s", "--retry-failed")
    assert code == 0 and jobs["items"] == []
