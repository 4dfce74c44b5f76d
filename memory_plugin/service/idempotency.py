"""Idempotency keys of ``add``: a retried call with the same key returns what the first call stored instead of
storing it again.

A key belongs to one store, app and tenant (two users' keys never collide or reveal each other) and is saved in the
same transaction as the writes it guards, so either both are committed or neither is. The same key with different
content is refused: it is a new request that reused a key by mistake.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from ..errors import InvalidArgumentError
from ..models import AddResult, Metadata
from ..scope import Scope
from ..storage.base import RecordReader, RecordWriter
from ..validation import MessageInput


def fingerprint(
    scope: Scope,
    messages: Sequence[MessageInput] | None,
    text: str | None,
    metadata: Metadata,
    sync: bool,
    timestamp: datetime | None,
) -> str:
    """A digest of everything an ``add`` was asked to store (defaults that change between retries, such as the
    current time, are left out)."""

    def when(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    content = [
        str(scope),
        None if messages is None else [(m.role, m.content, m.name, when(m.timestamp), m.metadata) for m in messages],
        text,
        metadata,
        sync,
        when(timestamp),
    ]
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()


def replayed(reader: RecordReader, store_id: int, scope: Scope, key: str, digest: str) -> AddResult | None:
    """The result of an earlier ``add`` with this key in this tenant, or ``None`` if the key is new.

    Raises:
        InvalidArgumentError: the key was used for an ``add`` with different content.
    """
    saved = reader.idempotent_result(store_id, scope, key)
    if saved is None:
        return None
    if saved[0] != digest:
        raise InvalidArgumentError(
            "idempotency_key", "was already used for a different add in this tenant; use a new key for a new request"
        )
    return AddResult.model_validate_json(saved[1])


def remember(tx: RecordWriter, store_id: int, scope: Scope, key: str, digest: str, result: AddResult) -> None:
    """Save the key with the result it produced, inside the transaction that made the result."""
    tx.save_idempotent_result(store_id, scope, key, digest, result.model_dump_json())
