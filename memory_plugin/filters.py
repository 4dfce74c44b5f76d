"""Read filters: everything that restricts a read, as one validated value.

Built fresh on every call from the scope and arguments; nothing is kept between calls. Each backend turns it into
its own query language (``storage/sqlite/sql.py``, ``storage/chroma.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .models import MetadataValue
from .scope import Scope


@dataclass(frozen=True)
class ReadFilter:
    """Everything that restricts a read: store, scope (wildcards and id lists allowed), types, metadata, time."""

    store_id: int
    scope: Scope
    memory_types: tuple[str, ...] = ()
    metadata: dict[str, tuple[MetadataValue, ...]] = field(default_factory=dict)
    start_time: datetime | None = None
    end_time: datetime | None = None
