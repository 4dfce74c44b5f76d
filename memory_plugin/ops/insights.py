"""Operations that summarise a store for the people looking after it (a console, a dashboard): the scopes it
holds with their counts, counts over a scope, and the calls per minute."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .. import models
from ..errors import InvalidArgumentError
from ..scope import Scope
from ..validation import check_int, check_limit, check_text_cursor, encode_text_cursor
from .base import StoreOperation, scope_field, store_field

Level = Literal["tenant_id", "agent_id", "run_id"]
LEVELS: tuple[Level, ...] = ("tenant_id", "agent_id", "run_id")
MAX_ACTIVITY_MINUTES = 24 * 60


@dataclass(frozen=True)
class ListScopes(StoreOperation[models.Page[models.ScopeSummary]], route="scopes", audit="ListScopes"):
    """One page of the distinct tenants, agents or runs (``level``) inside a read scope, by id, with counts."""

    scope: Scope
    level: Level = "tenant_id"
    limit: int = 50
    cursor: str | None = None  # the last id of the previous page

    @classmethod
    def parse(cls, **raw: Any) -> ListScopes:
        level = raw.get("level", "tenant_id")
        if level not in LEVELS:
            raise InvalidArgumentError("level", f"must be one of {list(LEVELS)}, got {level!r:.40}")
        return cls(
            store=store_field(raw),
            scope=scope_field(raw),
            level=level,
            limit=check_limit(raw.get("limit", 50)),
            cursor=check_text_cursor(raw.get("cursor")),
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "cursor": None if self.cursor is None else encode_text_cursor(self.cursor)}


@dataclass(frozen=True)
class StoreStats(StoreOperation[models.StoreStats], route="stats", audit="StoreStats"):
    """Counts over a read scope: memories (by type), raw messages, tenants, extraction jobs by state."""

    scope: Scope

    @classmethod
    def parse(cls, **raw: Any) -> StoreStats:
        return cls(store=store_field(raw), scope=scope_field(raw))


@dataclass(frozen=True)
class ActivityStats(StoreOperation[list[models.ActivityBucket]], route="activity", audit="ActivityStats"):
    """The audited calls of a read scope per minute over the last ``minutes``: counts, errors, latency."""

    scope: Scope
    minutes: int = 60

    @classmethod
    def parse(cls, **raw: Any) -> ActivityStats:
        minutes = check_int("minutes", raw.get("minutes", 60), 1, MAX_ACTIVITY_MINUTES)
        return cls(store=store_field(raw), scope=scope_field(raw), minutes=minutes)
