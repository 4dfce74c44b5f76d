"""Errors raised by memory_plugin.

Every error derives from :class:`MemoryPluginError`; each specific error also derives from the builtin a caller would
naturally catch (``ValueError`` for bad input, ``LookupError`` for things that are not there), so both
``except MemoryPluginError`` and ``except ValueError`` work.
"""

from __future__ import annotations

from typing import ClassVar


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


class RequestRefusedError(MemoryPluginError):
    """Root of the errors a memory server answers with before it runs an operation (authentication, authorisation,
    abuse limits); ``http_status`` is its HTTP status. No message ever holds a secret."""

    http_status: ClassVar[int] = 500


class AuthenticationError(RequestRefusedError, PermissionError):
    """The request does not prove who sent it: no or a malformed ``Authorization`` header, an unknown or revoked
    access key, a wrong secret or signature, a date too far from the server's clock, or a replayed signature."""

    http_status: ClassVar[int] = 401


class ForbiddenError(RequestRefusedError, PermissionError):
    """The access key is valid but may not do this: another app, a tenant outside the key, a write with a
    read-only key, or store / key administration without an admin key."""

    http_status: ClassVar[int] = 403


class RequestTooLargeError(RequestRefusedError, ValueError):
    """The request body is larger than the server accepts."""

    http_status: ClassVar[int] = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"request body of {size} bytes is over the limit of {limit} bytes")


class RateLimitedError(RequestRefusedError, RuntimeError):
    """The access key sent more requests than its rate allows; ``retry_after`` is how many seconds to wait."""

    http_status: ClassVar[int] = 429

    def __init__(self, key_id: str, retry_after: int) -> None:
        self.key_id = key_id
        self.retry_after = retry_after
        super().__init__(f"access key {key_id} is over its request rate; retry after {retry_after} s")


class KeyNotFoundError(RequestRefusedError, LookupError):
    """No access key with that id exists."""

    http_status: ClassVar[int] = 404
