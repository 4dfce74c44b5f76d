"""Access keys: what a key is, how ids and secrets are made, and the :class:`KeyStore` interface.

A key is bound to one app and, optionally, to a set of tenants of that app (see
:mod:`memory_plugin.server.authorization`); it may be read-only, or an admin key (store and key management). The
secret is shown once, when the key is created, and is never part of a :class:`KeyRecord`: it travels only inside a
:class:`Secret`, whose ``repr`` and ``str`` hide it, so it cannot reach a log line or an error by accident.

The SQLite implementation is :class:`memory_plugin.storage.sqlite.keys.SQLiteKeyStore` (``keys.db`` in the data
folder); a PostgreSQL one will implement the same Protocol.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .errors import InvalidArgumentError
from .scope import MAX_IDS_PER_SEGMENT, check_id

KEY_ID_PREFIX = "mpk_"
KEY_ID_RANDOM_CHARS = 20  # base32: 100 random bits
SECRET_BYTES = 32  # urlsafe base64: 43 characters
MAX_TENANTS_PER_KEY = MAX_IDS_PER_SEGMENT  # a read with '*' becomes the key's tenants as one id list
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class Secret:
    """A secret value that never shows itself: ``repr``/``str`` print ``Secret('***')``; :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for signing, comparing, or printing it once to the person who created the key."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class KeyRecord:
    """An access key without its secret: safe to list, log and return over the API.

    Attributes:
        key_id: ``mpk_`` and 20 base32 characters; sent in the clear with every request.
        app_id: the one app this key may reach.
        tenant_ids: the tenants it may reach, or ``None`` for every tenant of its app.
        read_only: it may not write.
        admin: it may create, update and delete stores and manage keys.
        created_at / revoked_at: UTC; a revoked key is refused from ``revoked_at`` on.
    """

    key_id: str
    app_id: str
    tenant_ids: frozenset[str] | None
    read_only: bool
    admin: bool
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready data (tenants sorted, times ISO 8601), as the CLI and the API show a key."""
        return {
            "key_id": self.key_id,
            "app_id": self.app_id,
            "tenant_ids": None if self.tenant_ids is None else sorted(self.tenant_ids),
            "read_only": self.read_only,
            "admin": self.admin,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


@dataclass(frozen=True)
class Credentials:
    """A key and its secret, as the server needs them to verify a request. ``repr`` hides the secret."""

    record: KeyRecord
    secret: Secret = field(repr=False)


class CredentialSource(Protocol):
    """Where request verification looks keys up (a :class:`KeyStore`, or a fixed mapping in tests)."""

    def credentials(self, key_id: str) -> Credentials | None:
        """The key and its secret, or ``None`` if no key has this id (revoked keys are returned, marked)."""
        ...


class KeyStore(CredentialSource, Protocol):
    """Access keys kept by the server: SQLite next to the data folder today, PostgreSQL later."""

    def create(
        self,
        app_id: str,
        tenant_ids: Collection[str] | None = None,
        *,
        read_only: bool = False,
        admin: bool = False,
    ) -> tuple[KeyRecord, Secret]:
        """Make a key; the secret is returned this once and can never be read back through the API."""
        ...

    def get(self, key_id: str) -> KeyRecord:
        """The key, revoked or not; :class:`KeyNotFoundError` if there is none."""
        ...

    def list(self) -> builtins.list[KeyRecord]:
        """Every key, oldest first, without secrets."""
        ...

    def revoke(self, key_id: str) -> KeyRecord:
        """Refuse the key from now on (revoking again keeps the first time); :class:`KeyNotFoundError` if absent."""
        ...


def new_key_id() -> str:
    """``mpk_`` followed by 20 random base32 characters."""
    return KEY_ID_PREFIX + "".join(secrets.choice(_BASE32) for _ in range(KEY_ID_RANDOM_CHARS))


def new_secret() -> Secret:
    """32 random bytes, urlsafe base64 (43 characters, never a ``.``, so ``<key id>.<secret>`` splits once)."""
    return Secret(secrets.token_urlsafe(SECRET_BYTES))


def is_key_id(value: str) -> bool:
    """True if ``value`` has the shape of a key id (it may still not exist)."""
    random_part = value[len(KEY_ID_PREFIX) :]
    return (
        value.startswith(KEY_ID_PREFIX)
        and len(random_part) == KEY_ID_RANDOM_CHARS
        and all(ch in _BASE32 for ch in random_part)
    )


def check_key_settings(
    app_id: object, tenant_ids: object, read_only: object, admin: object
) -> tuple[str, frozenset[str] | None, bool, bool]:
    """Validate what a new key is bound to; raises :class:`InvalidArgumentError` naming the field.

    App and tenant ids follow :func:`memory_plugin.scope.check_id`. An admin key manages whole stores (which hold
    every tenant's data) and keys, so it can be neither read-only nor bound to tenants.
    """
    app = check_id("app_id", app_id)
    tenants: frozenset[str] | None = None
    if tenant_ids is not None:
        if isinstance(tenant_ids, (str, bytes)) or not isinstance(tenant_ids, Collection):
            raise InvalidArgumentError("tenant_ids", f"must be a list of tenant ids, got {type(tenant_ids).__name__}")
        if not tenant_ids:
            raise InvalidArgumentError("tenant_ids", "must not be empty; leave it out for every tenant of the app")
        if len(tenant_ids) > MAX_TENANTS_PER_KEY:
            raise InvalidArgumentError("tenant_ids", f"may hold at most {MAX_TENANTS_PER_KEY} tenants")
        tenants = frozenset(check_id(f"tenant_ids[{i}]", tenant) for i, tenant in enumerate(tenant_ids))
    for name, flag in (("read_only", read_only), ("admin", admin)):
        if not isinstance(flag, bool):
            raise InvalidArgumentError(name, f"must be true or false, got {type(flag).__name__}")
    if admin and read_only:
        raise InvalidArgumentError("admin", "an admin key manages stores and keys, so it cannot be read-only")
    if admin and tenants is not None:
        raise InvalidArgumentError(
            "admin", "an admin key manages whole stores, which hold every tenant's data, so it cannot be tenant-bound"
        )
    return app, tenants, bool(read_only), bool(admin)
