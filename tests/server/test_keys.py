"""Access keys in keys.db: real SQLite files in temp folders, several processes, the CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from memory_plugin import InvalidArgumentError, InvalidScopeError, MemoryClient
from memory_plugin.cli import main
from memory_plugin.embedding import Embedder
from memory_plugin.errors import KeyNotFoundError
from memory_plugin.keys import Credentials, Secret, is_key_id
from memory_plugin.storage.sqlite.keys import KEYS_FILE, SQLiteKeyStore


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def cli_process(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memory_plugin", *argv], capture_output=True, text=True, timeout=60, check=False
    )


def test_create_get_list_revoke(tmp_path: Path) -> None:
    with SQLiteKeyStore(tmp_path) as keys:
        record, secret = keys.create("app-001", ["user-2", "user-1"], read_only=True)
        admin, _ = keys.create("app-001", admin=True)
        assert is_key_id(record.key_id) and len(secret.reveal()) >= 43 and "." not in secret.reveal()
        assert record.tenant_ids == frozenset({"user-1", "user-2"}) and record.read_only and not record.admin
        assert keys.get(record.key_id) == record
        assert [k.key_id for k in keys.list()] == [record.key_id, admin.key_id]
        assert admin.tenant_ids is None and admin.admin
        revoked = keys.revoke(record.key_id)
        assert revoked.revoked and revoked.revoked_at is not None
        assert keys.revoke(record.key_id).revoked_at == revoked.revoked_at  # revoking again keeps the first time
        credentials = keys.credentials(record.key_id)
        assert credentials is not None and credentials.record.revoked
        assert credentials.secret.reveal() == secret.reveal()
        assert keys.credentials("mpk_" + "a" * 20) is None
        with pytest.raises(KeyNotFoundError, match="no access key"):
            keys.revoke("mpk_" + "a" * 20)
        with pytest.raises(KeyNotFoundError):
            keys.get("nope")


def test_ids_and_secrets_are_unique(tmp_path: Path) -> None:
    with SQLiteKeyStore(tmp_path) as keys:
        made = [keys.create("app") for _ in range(50)]
    assert len({r.key_id for r, _ in made}) == 50 and len({s.reveal() for _, s in made}) == 50


@pytest.mark.parametrize(
    ("app", "tenants", "flags", "field"),
    [
        ("", None, {}, "app_id"),
        ("a*", None, {}, "app_id"),
        ("x" * 129, None, {}, "app_id"),
        ("app", ["ok", "bad\n"], {}, "tenant_ids[1]"),
        ("app", ["*"], {}, "tenant_ids[0]"),
        ("app", [], {}, "tenant_ids"),
        ("app", "user-1", {}, "tenant_ids"),
        ("app", None, {"admin": True, "read_only": True}, "admin"),
        ("app", ["user-1"], {"admin": True}, "admin"),
        ("app", None, {"read_only": "yes"}, "read_only"),
    ],
)
def test_bad_settings_name_the_field_and_write_nothing(
    tmp_path: Path, app: str, tenants: object, flags: dict[str, object], field: str
) -> None:
    with SQLiteKeyStore(tmp_path) as keys:
        with pytest.raises(InvalidArgumentError) as caught:
            keys.create(app, tenants, **flags)  # type: ignore[arg-type]
        assert caught.value.field == field
        assert keys.list() == []


def test_bad_ids_raise_the_scope_error_class(tmp_path: Path) -> None:
    with SQLiteKeyStore(tmp_path) as keys, pytest.raises(InvalidScopeError):
        keys.create("app/\x00")


def test_file_is_private_even_if_it_was_not(tmp_path: Path) -> None:
    SQLiteKeyStore(tmp_path).close()
    path = tmp_path / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with SQLiteKeyStore(tmp_path) as keys:
        keys.create("app")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for sidecar in tmp_path.glob(KEYS_FILE + "-*"):  # -wal / -shm, if still there
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0


def test_no_secret_in_any_repr_or_listing(tmp_path: Path) -> None:
    with SQLiteKeyStore(tmp_path) as keys:
        record, secret = keys.create("app", ["user-1"])
        credentials = keys.credentials(record.key_id)
        listing = keys.list()
    assert credentials is not None
    value = secret.reveal()
    for text in (
        repr(record),
        str(record),
        repr(secret),
        str(secret),
        f"{secret}",
        repr(credentials),
        repr(listing),
        json.dumps(record.as_dict()),
        repr(keys),
    ):
        assert value not in text
    assert repr(Credentials(record, Secret("hunter2"))).count("hunter2") == 0


def test_another_process_creates_and_revokes_while_a_server_owns_the_folder(
    tmp_path: Path, fake_embedder: Embedder
) -> None:
    """The server holds the data folder's lock and keys.db open; the CLI still manages keys, and the server sees
    a new key and a revocation on its next lookup."""
    folder = tmp_path / "data"
    with MemoryClient(path=folder, embedder=fake_embedder), SQLiteKeyStore(folder) as server_keys:
        made = cli_process("keys", "create", "--path", str(folder), "--app", "app-001", "--json")
        assert made.returncode == 0, made.stderr
        row = json.loads(made.stdout)["items"][0]
        seen = server_keys.credentials(row["key_id"])
        assert seen is not None and seen.secret.reveal() == row["secret"] and not seen.record.revoked
        revoked = cli_process("keys", "revoke", "--path", str(folder), row["key_id"], "--json")
        assert revoked.returncode == 0, revoked.stderr
        seen = server_keys.credentials(row["key_id"])
        assert seen is not None and seen.record.revoked


def test_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(tmp_path)
    code, out = cli(capsys, "keys", "list", "--path", path, "--json")
    assert code == 0 and out["items"] == [] and not (tmp_path / KEYS_FILE).exists()  # a read creates nothing
    code, out = cli(
        capsys, "--path", path, "--json", "keys", "create", "--app", "app-1", "--tenant", "u1", "--tenant", "u2"
    )
    [created] = out["items"]
    assert code == 0 and created["tenant_ids"] == ["u1", "u2"] and created["secret"]
    code, out = cli(capsys, "keys", "list", "--path", path, "--json")
    [listed] = out["items"]
    assert listed["key_id"] == created["key_id"] and "secret" not in listed
    code, out = cli(capsys, "keys", "revoke", created["key_id"], "--path", path, "--json")
    assert code == 0 and out["items"][0]["revoked_at"]
    code, out = cli(capsys, "keys", "create", "--path", path, "--app", "a", "--admin", "--tenant", "u", "--json")
    assert code == 2 and out["error"]["field"] == "admin"
    code, out = cli(capsys, "keys", "revoke", "mpk_missing", "--path", path, "--json")
    assert code == 2 and out["error"]["type"] == "KeyNotFoundError"


def test_cli_revoke_without_keys_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "keys", "revoke", "mpk_x", "--path", str(tmp_path), "--json")
    assert code == 2 and "keys create" in out["error"]["message"]
    assert not (tmp_path / KEYS_FILE).exists()
