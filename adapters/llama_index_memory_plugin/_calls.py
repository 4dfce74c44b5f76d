"""One code path for sync and async: adapter logic is written once as a *plan*, a generator that yields the store
calls it needs and receives their results; :func:`run` executes a plan on a :class:`MemoryStore`, :func:`arun` on
an :class:`AsyncMemoryStore`. The two drivers differ only by the ``await``, so the sync and async methods of the
adapters cannot drift apart (the sans-I/O shape httpx uses for ``Client`` / ``AsyncClient``).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from memory_plugin import AsyncMemoryStore, MemoryStore

T = TypeVar("T")
StoreMethod = Literal["add", "search", "messages", "clear_messages"]


@dataclass(frozen=True)
class StoreCall:
    """One call a plan asks for: ``store.<method>(*args, **kwargs)`` on either API (they share method names)."""

    method: StoreMethod
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


Plan = Generator[StoreCall, Any, T]


def run(plan: Plan[T], store: MemoryStore) -> T:
    """Execute ``plan`` with blocking calls on ``store`` and return its result."""
    try:
        call = next(plan)
        while True:
            call = plan.send(getattr(store, call.method)(*call.args, **call.kwargs))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        plan.close()


async def arun(plan: Plan[T], store: AsyncMemoryStore) -> T:
    """Execute ``plan`` with awaited calls on ``store`` and return its result."""
    try:
        call = next(plan)
        while True:
            call = plan.send(await getattr(store, call.method)(*call.args, **call.kwargs))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    finally:
        plan.close()
