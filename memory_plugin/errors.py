"""Errors raised by memory_plugin.

Every error derives from :class:`MemoryPluginError`; each specific error also derives from the builtin a caller would
naturally catch (``ValueError`` for bad input, ``LookupError`` for things that are not there), so both
``except MemoryPluginError`` and ``except ValueError`` work.
"""

from __future__ import annotations

from typing import ClassVar


class MemoryPluginError(Exception):
    """Root of every error this library raises on purpose. ``request_id`` is the audit record's id when the call
    that failed was audited (e.g. to find it in ``store.requests()``); ``http_status`` is how a memory server
    answers it (the remote client raises the same class again)."""

    request_id: str | None = None
    http_status: ClassVar[int] = 500


class InvalidArgumentError(MemoryPluginError, ValueError):
    """An argument is malformed or out of range. The message names the field and what is allowed.

    Nothing is written when this is raised.
    """

    http_status: ClassVar[int] = 400

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class InvalidScopeError(InvalidArgumentError):
    """A scope segment is missing, malformed, or a wildcard / id list where a concrete id is required."""


class MemoryNotFoundError(MemoryPluginError, LookupError):
    """No memory with that id exists in the given scope (it may exist elsewhere; that is never revealed)."""

    http_status: ClassVar[int] = 404


class MemoryStoreNotFoundError(MemoryPluginError, LookupError):
    """No memory store with that name exists in this data folder."""

    http_status: ClassVar[int] = 404


class MemoryStoreExistsError(MemoryPluginError, ValueError):
    """A memory store with that name already exists."""

    http_status: ClassVar[int] = 409


class StoreLockedError(MemoryPluginError, RuntimeError):
    """Another process (or another client in this process) owns the data folder."""

    http_status: ClassVar[int] = 503


class EmbeddingMismatchError(MemoryPluginError, ValueError):
    """The embedder given does not match the one that built the memory store (name or dimension)."""

    http_status: ClassVar[int] = 409


class EmbeddingError(MemoryPluginError, RuntimeError):
    """The embedder failed or returned something that is not a vector per text."""

    http_status: ClassVar[int] = 503


class ExtractionError(MemoryPluginError, RuntimeError):
    """The extractor failed to turn messages into memories.

    ``raw_output`` is what the LLM answered, if that was the problem; ``retryable`` is False when running the
    same job again cannot help (a background job is then marked failed at once, see ``extraction_status()``).
    """

    http_status: ClassVar[int] = 503

    def __init__(self, message: str, *, raw_output: str | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.raw_output = raw_output
        self.retryable = retryable


class StorageError(MemoryPluginError, OSError):
    """The data folder could not be read or written (disk full, read-only folder, corrupt file)."""

    http_status: ClassVar[int] = 503


class ClientClosedError(MemoryPluginError, RuntimeError):
    """The client was closed; open a new one."""

    http_status: ClassVar[int] = 503


class ConnectionFailedError(MemoryPluginError, ConnectionError):
    """A memory server could not be reached, or answered something that is not an answer of ours."""

    http_status: ClassVar[int] = 503


class RequestRefusedError(MemoryPluginError):
    """Root of the errors a memory server answers with before it runs an operation (authentication, authorisation,
    abuse limits). No message ever holds a secret."""


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


def error_class(code: str) -> type[MemoryPluginError]:
    """The error class a memory server names ``code`` (its class name); the root class for a code this version
    does not know."""

    def subclasses(root: type[MemoryPluginError]) -> list[type[MemoryPluginError]]:
        return [root, *(sub for child in root.__subclasses__() for sub in subclasses(child))]

    return next((cls for cls in subclasses(MemoryPluginError) if cls.__name__ == code), MemoryPluginError)
