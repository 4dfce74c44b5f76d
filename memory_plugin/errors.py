"""Errors raised by memory_plugin.

Every error derives from :class:`MemoryPluginError`; each specific error also derives from the builtin a caller would
naturally catch (``ValueError`` for bad input, ``LookupError`` for things that are not there), so both
``except MemoryPluginError`` and ``except ValueError`` work.
"""

from __future__ import annotations


class MemoryPluginError(Exception):
    """Root of every error this library raises on purpose."""


class InvalidArgumentError(MemoryPluginError, ValueError):
    """An argument is malformed or out of range. The message names the field and what is allowed.

    Nothing is written when this is raised.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class InvalidScopeError(InvalidArgumentError):
    """A scope segment is missing, malformed, or a wildcard / id list where a concrete id is required."""


class MemoryNotFoundError(MemoryPluginError, LookupError):
    """No memory with that id exists in the given scope (it may exist elsewhere; that is never revealed)."""


class MemoryStoreNotFoundError(MemoryPluginError, LookupError):
    """No memory store with that name exists in this data folder."""


class MemoryStoreExistsError(MemoryPluginError, ValueError):
    """A memory store with that name already exists."""


class StoreLockedError(MemoryPluginError, RuntimeError):
    """Another process (or another client in this process) owns the data folder."""


class EmbeddingMismatchError(MemoryPluginError, ValueError):
    """The embedder given does not match the one that built the memory store (name or dimension)."""


class EmbeddingError(MemoryPluginError, RuntimeError):
    """The embedder failed or returned something that is not a vector per text."""


class ExtractionError(MemoryPluginError, RuntimeError):
    """The extractor failed to turn messages into memories.

    ``raw_output`` is what the LLM answered, if that was the problem; ``retryable`` is False when running the
    same job again cannot help (a background job is then marked failed at once, see ``extraction_status()``).
    """

    def __init__(self, message: str, *, raw_output: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.retryable = retryable


class StorageError(MemoryPluginError, OSError):
    """The data folder could not be read or written (disk full, read-only folder, corrupt file)."""


class ClientClosedError(MemoryPluginError, RuntimeError):
    """The client was closed; open a new one."""
