"""Operations on the memory stores themselves: create, get, list, update, delete."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError
from ..models import (
    MemoryStoreInfo,
)
from ..validation import (
    check_description,
    check_retention_days,
    check_store_name,
)
from .base import Codec, Operation


@dataclass(frozen=True)
class CreateStore(Operation[MemoryStoreInfo]):
    ROUTE = "stores.create"
    RESULT = Codec(MemoryStoreInfo)
    WRITES = True
    name: str
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
class GetStore(Operation[MemoryStoreInfo]):
    ROUTE = "stores.get"
    RESULT = Codec(MemoryStoreInfo)
    name: str

    @classmethod
    def parse(cls, **raw: Any) -> GetStore:
        return cls(name=check_store_name(raw.get("name")))


@dataclass(frozen=True)
class ListStores(Operation[list[MemoryStoreInfo]]):
    ROUTE = "stores.list"
    RESULT = Codec(list[MemoryStoreInfo])

    @classmethod
    def parse(cls, **raw: Any) -> ListStores:
        return cls()


STORE_SETTINGS = ("description", "audit_retention_days", "history_retention_days")


@dataclass(frozen=True)
class UpdateStore(Operation[MemoryStoreInfo]):
    """Change some of a store's settings; ``changes`` holds only the settings named by the caller."""

    ROUTE = "stores.update"
    RESULT = Codec(MemoryStoreInfo)
    WRITES = True
    name: str
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
class DeleteStore(Operation[None]):
    ROUTE = "stores.delete"
    RESULT = Codec(None)
    WRITES = True
    name: str

    @classmethod
    def parse(cls, **raw: Any) -> DeleteStore:
        return cls(name=check_store_name(raw.get("name")))
