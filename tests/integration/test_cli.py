"""The command line, driven through ``main`` in-process (real model, real storage)."""

from __future__ import annotations

import json
from pathlib import Path

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
        "assistant:Noted",
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
    assert [m["content"] for m in json.loads(out)["items"]] == ["I like green tea", "Noted"]
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
    with pytest.raises(SystemExit):
        main(["--path", str(tmp_path), "add", "--store", "s", "--scope", "a/b/*/r", "--text", "x", "--scope", "bad"])
