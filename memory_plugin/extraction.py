"""Extraction: how raw messages (or text) become long-term memories.

An :class:`Extractor` looks at what one ``add`` call brought and returns operations: :class:`NewMemory`,
:class:`MemoryUpdate` or :class:`MemoryDeletion`. The engine embeds and applies them in one transaction, with
history, so an extractor never touches storage. The default :class:`TurnExtractor` needs no LLM: each non-empty
user/assistant turn becomes a ``message`` memory and ``text=`` becomes one ``fact``. An LLM extractor plugs in
through the same interface (``MemoryClient(extractor=...)`` or per store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, Union, runtime_checkable

from .models import Memory, Message, Metadata
from .scope import Scope


@dataclass(frozen=True)
class ExtractionInput:
    """What one ``add`` call brought, and ways to look at what is already remembered.

    Attributes:
        scope: the concrete scope written to.
        messages: the new raw messages (empty when ``text`` was given).
        text: the pre-digested text of ``add(text=...)``, else ``None``.
        metadata: call-level metadata (per-message metadata is on each message).
        timestamp: when the call says this happened.
        recent: earlier messages of the same run, oldest first, for context.
        related: ``related(query, k)`` finds existing memories of the same app and tenant, best first.
    """

    scope: Scope
    messages: list[Message]
    text: str | None
    metadata: Metadata
    timestamp: datetime
    recent: list[Message] = field(default_factory=list)
    related: Callable[[str, int], list[Memory]] = field(default=lambda query, k: [])


@dataclass(frozen=True)
class NewMemory:
    """Store a new memory. ``event_time`` defaults to the call's timestamp."""

    text: str
    memory_type: str
    event_time: datetime | None = None
    metadata: Metadata = field(default_factory=dict)
    source_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemoryUpdate:
    """Change an existing memory of the same app and tenant (``None`` keeps a field as it is)."""

    memory_id: str
    text: str | None = None
    metadata: Metadata | None = None
    event_time: datetime | None = None


@dataclass(frozen=True)
class MemoryDeletion:
    """Delete an existing memory of the same app and tenant (e.g. contradicted by new information)."""

    memory_id: str


MemoryOperation = Union[NewMemory, MemoryUpdate, MemoryDeletion]


@runtime_checkable
class Extractor(Protocol):
    """Turns one ``add`` call into memory operations. Must be thread-safe: background extraction runs on a
    worker thread. Raising makes the call fail (``sync=True``) or the background job retry."""

    def extract(self, request: ExtractionInput) -> Sequence[MemoryOperation]: ...


class TurnExtractor:
    """The default extractor, no LLM: each non-empty user/assistant turn becomes a ``message`` memory (with the
    turn's own time and metadata), and ``add(text=...)`` becomes one ``fact``. System and tool messages are kept
    as short-term messages only."""

    def extract(self, request: ExtractionInput) -> list[MemoryOperation]:
        if request.text is not None:
            return [NewMemory(text=request.text, memory_type="fact", metadata=dict(request.metadata))]
        return [
            NewMemory(
                text=message.content,
                memory_type="message",
                event_time=message.timestamp,
                metadata={**request.metadata, **message.metadata},
                source_message_ids=(message.id,),
            )
            for message in request.messages
            if message.role in ("user", "assistant") and message.content.strip()
        ]
