"""The memory store a LangChain adapter talks to: a :class:`~memory_plugin.MemoryStore` or an
:class:`~memory_plugin.AsyncMemoryStore`; sync hooks use its sync API and async hooks its async one (both from
:func:`memory_plugin.binding.store_views`, the one place every adapter resolves its store)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from memory_plugin.binding import store_views


def _memory_store(value: Any) -> Any:
    store_views(value)
    return value


# The ``store`` field of the adapters that are pydantic models: checked when the adapter is built, kept as given
# (its other API is made when a call needs it), and left out of serialization.
StoreField = Annotated[Any, AfterValidator(_memory_store), Field(exclude=True)]
