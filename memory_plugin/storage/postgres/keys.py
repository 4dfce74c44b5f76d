"""Access keys in the PostgreSQL record (``access_keys``), shared by every memory server on the database.

Keys are read per request, never cached, so a key created or revoked through any server, or with
``memory-plugin keys create --database ...``, counts on every server at its next request.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

from ...errors import KeyNotFoundError
from ...keys import Credentials, KeyRecord, Secret, check_key_settings, new_key_id, new_secret
from ..sqlite.keys import key_record
from . import PostgresRecord


class PostgresKeyStore:
    """The :class:`~memory_plugin.keys.KeyStore` of a PostgreSQL record.

    Args:
        record: the database's record (its connection pool is shared), or a connection string to open one.
    """

    def __init__(self, record: PostgresRecord | str) -> None:
        self._owned = isinstance(record, str)
        self._record = PostgresRecord(record, max_connections=2) if isinstance(record, str) else record

    def _row(self, key_id: str) -> dict[str, Any] | None:
        with self._record.read() as reader:
            return reader._one("SELECT * FROM access_keys WHERE key_id = %s", (key_id,))

    def create(
        self, app_id: str, tenant_ids: Collection[str] | None = None, *, read_only: bool = False, admin: bool = False
    ) -> tuple[KeyRecord, Secret]:
        """Make a key bound to ``app_id`` (and ``tenant_ids``, if given); returns it and its secret, shown once.

        Raises:
            InvalidArgumentError: a bad app or tenant id, or admin combined with read-only or tenants.
        """
        app, tenants, read_only, admin = check_key_settings(app_id, tenant_ids, read_only, admin)
        key_id, secret = new_key_id(), new_secret()
        created = datetime.now(timezone.utc)
        with self._record.write() as tx:
            tx.conn.execute(
                "INSERT INTO access_keys (key_id, secret, app_id, tenant_ids, read_only, admin, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (key_id, secret.reveal(), app, None if tenants is None else "\n".join(sorted(tenants)), read_only,
                 admin, created.timestamp()),
            )  # fmt: skip
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
        with self._record.read() as reader:
            return [key_record(r) for r in reader._all("SELECT * FROM access_keys ORDER BY created_at, key_id")]

    def revoke(self, key_id: str) -> KeyRecord:
        with self._record.write() as tx:
            tx.conn.execute(
                "UPDATE access_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                (datetime.now(timezone.utc).timestamp(), key_id),
            )
        return self.get(key_id)

    def close(self) -> None:
        if self._owned:
            self._record.close()

    def __enter__(self) -> PostgresKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostgresKeyStore({self._record.where!r})"
