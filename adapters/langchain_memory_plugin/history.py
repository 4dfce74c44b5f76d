"""``MemoryChatMessageHistory``: the short-term messages of one scope as a LangChain chat history."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from memory_plugin import Scope
from memory_plugin.binding import StoreLike, store_views, write_metadata, write_scope
from memory_plugin.models import Metadata, every_page
from memory_plugin.validation import MAX_LIMIT

from ._messages import ADAPTER_KEY_PREFIX, in_batches
from ._stored_messages import from_stored, to_stored_all


class MemoryChatMessageHistory(BaseChatMessageHistory):
    """The raw messages of one concrete scope (one run), oldest first; ``add_messages`` writes turns, and the
    store extracts long-term memories from them (in the background by default), so a conversation kept through
    ``RunnableWithMessageHistory`` is also recalled by later runs.

    **What you add is what you get back**: each message comes back equal to the one added, with its own ``id``
    (``None`` if it had none), content (empty or a list of blocks too), name, ``additional_kwargs``, tool calls,
    ``response_metadata`` and ``usage_metadata`` (see :mod:`langchain_memory_plugin._stored_messages` for how
    they are kept). Messages of the scope written some other way (``store.add``, :class:`MemoryMiddleware`) come
    back as the closest LangChain message, with the id they were written with, else the engine's message id.

    Limits: a message's fields other than its text take metadata values of 2,000 characters, at most 16 per
    message including the keys of ``metadata`` below (about 30,000 characters of JSON without history metadata;
    keep ``metadata`` to at most 15 keys). A message that does not fit, or whose fields are not JSON, is refused
    with an ``InvalidArgumentError`` naming it, and nothing of that ``add_messages`` call is written.

    Args:
        store: the engine store (:class:`~memory_plugin.MemoryStore` or :class:`~memory_plugin.AsyncMemoryStore`).
        scope: one concrete scope (four ids, no ``"*"``), a :class:`~memory_plugin.Scope` or a mapping.
        sync: extract long-term memories before ``add_messages`` returns (default ``False``: background).
        metadata: flat metadata put on every message written (each key takes one of the 16 metadata values a
            message has; keys starting with ``lc_`` are the adapter's own).

    Raises:
        InvalidScopeError: ``scope`` is missing a segment or is not concrete (at construction).
        InvalidArgumentError: ``metadata`` is not flat scalars, or uses an ``lc_`` key (at construction).

    Example:
        >>> chain = RunnableWithMessageHistory(  # doctest: +SKIP
        ...     prompt | model,
        ...     lambda session_id: MemoryChatMessageHistory(store, base_scope.with_(run_id=session_id)),
        ...     input_messages_key="question", history_messages_key="history",
        ... )
    """

    def __init__(
        self,
        store: StoreLike,
        scope: Scope | Mapping[str, Any],
        *,
        sync: bool = False,
        metadata: Metadata | None = None,
    ) -> None:
        super().__init__()
        self._store, self._astore = store_views(store, "MemoryChatMessageHistory")
        self.scope = write_scope(scope, "MemoryChatMessageHistory")
        self._sync = sync
        self._metadata = dict(write_metadata(metadata, ADAPTER_KEY_PREFIX))

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """All messages of the scope, oldest first."""
        pages = every_page(lambda cursor: self._store.messages(self.scope, limit=MAX_LIMIT, cursor=cursor))
        return [from_stored(message) for page in pages for message in page.items]

    async def aget_messages(self) -> list[BaseMessage]:
        # The async engine API runs each call on a worker thread too; one thread for all pages is the same.
        return await asyncio.to_thread(lambda: self.messages)

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Write messages to the scope, in order (each call of up to 100 messages is one transaction).

        Raises:
            InvalidArgumentError: a message cannot be kept exactly (see the class docstring); nothing is written.
        """
        for chunk in in_batches(to_stored_all(messages, self._metadata)):
            self._store.add(self.scope, messages=chunk, metadata=self._metadata, sync=self._sync)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async :meth:`add_messages`."""
        for chunk in in_batches(to_stored_all(messages, self._metadata)):
            await self._astore.add(self.scope, messages=chunk, metadata=self._metadata, sync=self._sync)

    def clear(self) -> None:
        """Delete this scope's messages (the chat history). Long-term memories already made from them stay."""
        self._store.clear_messages(self.scope)

    async def aclear(self) -> None:
        """Async :meth:`clear`."""
        await self._astore.clear_messages(self.scope)

    def __repr__(self) -> str:
        return f"MemoryChatMessageHistory(store={self._store.name!r}, scope='{self.scope}')"
