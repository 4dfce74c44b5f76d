"""Access keys in ``keys.db``, a SQLite file of its own inside the data folder.

Not the engine's record: while ``memory-plugin serve`` runs it owns the data folder (an exclusive lock), and
``memory-plugin keys create`` must still work from another process. SQLite in WAL mode is safe for several
processes, so the server sees a new or revoked key on its next request (keys are read per request, never
cached). The file holds the secrets (HMAC needs them), so it is created with mode 0600 and tightened to 0600 if
found looser; SQLite gives its ``-wal`` and ``-shm`` files the same mode.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ...errors import KeyNotFoundError, StorageError
from ...keys import Credentials, KeyRecord, Secret, check_key_settings, new_key_id, new_secret
from .connections import committed, storage_errors
from .rows import Row

KEYS_FILE = "keys.db"
FILE_MODE = 0o600
_SCHEMA = """
CREATE TABLE IF NOT EXISTS access_keys (
    key_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    app_id TEXT NOT NULL,
    tenant_ids TEXT,            -- NULL: every tenant of the app; else one id per line, sorted
    read_only INTEGER NOT NULL,
    admin INTEGER NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
)
"""


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


def key_record(row: Row) -> KeyRecord:
    """An ``access_keys`` row (the PostgreSQL record keeps the same columns) as a :class:`KeyRecord`."""
    created = _time(row["created_at"])
    assert created is not None  # NOT NULL column
    return KeyRecord(
        key_id=row["key_id"],
        app_id=row["app_id"],
        tenant_ids=None if row["tenant_ids"] is None else frozenset(row["tenant_ids"].split("\n")),
        read_only=bool(row["read_only"]),
        admin=bool(row["admin"]),
        created_at=created,
        revoked_at=_time(row["revoked_at"]),
    )


class SQLiteKeyStore:
    """The :class:`~memory_plugin.keys.KeyStore` of one data folder (``<folder>/keys.db``).

    Thread-safe (one connection, one lock); several processes may open the same folder at once.

    Args:
        folder: the data folder; created if missing.

    Raises:
        StorageError: the file cannot be created or opened.

    Example:
        >>> keys = SQLiteKeyStore("./agent-memory")  # doctest: +SKIP
        >>> record, secret = keys.create("app-001", ["user-001"], read_only=True)  # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / KEYS_FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE))
            os.chmod(self.path, FILE_MODE)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StorageError(f"cannot open the access keys file {self.path}: {e}") from e
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, committed(self._conn, f"cannot write the access keys file {self.path}") as conn:
            yield conn

    def _rows(self, sql: str, params: tuple[str, ...] = ()) -> builtins.list[sqlite3.Row]:
        with self._lock, storage_errors(f"cannot read the access keys file {self.path}"):
            return self._conn.execute(sql, params).fetchall()

    def _row(self, key_id: str) -> sqlite3.Row | None:
        rows = self._rows("SELECT * FROM access_keys WHERE key_id = ?", (key_id,))
        return rows[0] if rows else None

    def create(
        self,
        app_id: str,
        tenant_ids: Collection[str] | None = None,
        *,
        read_only: bool = False,
        admin: bool = False,
    ) -> tuple[KeyRecord, Secret]:
        """Make a key bound to ``app_id`` (and ``tenant_ids``, if given); returns it and its secret, shown once.

        Raises:
            InvalidArgumentError: a bad app or tenant id, or admin combined with read-only or tenants.
        """
        app, tenants, read_only, admin = check_key_settings(app_id, tenant_ids, read_only, admin)
        key_id, secret = new_key_id(), new_secret()
        created = datetime.now(timezone.utc)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO access_keys (key_id, secret, app_id, tenant_ids, read_only, admin, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    secret.reveal(),
                    app,
                    None if tenants is None else "\n".join(sorted(tenants)),
                    int(read_only),
                    int(admin),
                    created.timestamp(),
                ),
            )
        return KeyRecord(key_id, app, tenants, read_only, admin, created), secret

    def credentials(self, key_id: str) -> Credentials | None:
        row = self._row(key_id)
        return None if row is None else Credentials(key_record(row), Secret(row["secret"]))

    def get(self, key_id: str) -> KeyRecord:
        row = self._row(key_id)
        if row is None:
            raise KeyNotFoundError(f"no access key {key_id!r:.80}; `memory-plugin keys list` shows them")
        return key_record(row)

    def list(self) -> builtins.list[KeyRecord]:
        return [key_record(row) for row in self._rows("SELECT * FROM access_keys ORDER BY created_at, key_id")]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE access_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (datetime.now(timezone.utc).timestamp(), key_id),
            )
        return self.get(key_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteKeyStore({str(self.path.parent)!r})"
