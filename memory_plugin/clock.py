"""Time and ids as the engine uses them: UTC, Unix seconds in storage, random ids with a kind prefix.

Code reads the time through ``clock.now()`` (the module attribute), so a test can step the clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone


def now() -> float:
    """The current time as Unix seconds."""
    return datetime.now(timezone.utc).timestamp()


def to_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=timezone.utc)


def new_id(prefix: str) -> str:
    """A new random id such as ``mem_3f2a...``."""
    return f"{prefix}_{uuid.uuid4().hex}"
