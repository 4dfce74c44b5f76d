"""Operations on the memory stores themselves: create, get, list, update, delete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError
from ..models import MemoryStoreInfo
from ..validation import check_description, check_retention_days, check_store_name
from .base import Operation, R

STORE_SETTINGS = ("description", "audit_retention_days", "history_retention_days")


@dataclass(frozen=True)
class NamedStoreOperation(Operation[R]):
    """An operation on the memory store named ``name`` itself (not on its memories)."""

    name: str

    @classmethod
    def parse(cls, **raw: Any) -> NamedStoreOperation[R]:
        return cls(name=check_store_name(raw.get("name")))


@dataclass(frozen=True)
class CreateStore(NamedStoreOperation[MemoryStoreInfo], route="stores.create", writes=True):
    """Create a store, with its description and retention settings."""

    description: str = ""
    audit_retention_days: int | None = None
    history_retention_days: int | None = None

    @classmethod
    def parse(cls, **raw: Any) -> CreateStore:
        return cls(
            name=check_store_name(raw.get("name")),
            description=check_description(raw.get("description", "")),
            audit_retention_days=check_retention_days("audit_retention_days", raw.get("audit_retention_days")),
            history_retention_days=check_retention_days("history_retention_days", raw.get("history_retention_days")),
        )


@dataclass(frozen=True)
class GetStore(NamedStoreOperation[MemoryStoreInfo], route="stores.get"):
    """One store's settings; :class:`~memory_plugin.errors.MemoryStoreNotFoundError` if there is none."""


@dataclass(frozen=True)
class ListStores(Operation[list[MemoryStoreInfo]], route="stores.list"):
    """Every store of the data folder."""

    @classmethod
    def parse(cls, **raw: Any) -> ListStores:
        return cls()


@dataclass(frozen=True)
class UpdateStore(NamedStoreOperation[MemoryStoreInfo], route="stores.update", writes=True):
    """Change some of a store's settings; ``changes`` holds only the settings named by the caller."""

    changes: Mapping[str, str | int | None]

    @classmethod
    def parse(cls, **raw: Any) -> UpdateStore:
        changes = raw.get("changes") or {}
        if not isinstance(changes, Mapping):
            raise InvalidArgumentError("changes", f"must be a mapping of settings, got {type(changes).__name__}")
        checked: dict[str, str | int | None] = {}
        for key, value in changes.items():
            if key == "description":
                checked[key] = check_description(value)
            elif key in STORE_SETTINGS:
                checked[key] = check_retention_days(key, value)
            else:
                raise InvalidArgumentError(str(key), f"is not a store setting; allowed: {list(STORE_SETTINGS)}")
        return cls(name=check_store_name(raw.get("name")), changes=checked)


@dataclass(frozen=True)
class DeleteStore(NamedStoreOperation[None], route="stores.delete", writes=True):
    """Delete a store and everything in it."""
