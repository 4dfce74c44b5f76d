"""Errors the server raises before an operation runs: authentication (401), authorisation (403), abuse limits
(413, 429), and an access key that is not there.

Each carries the HTTP status the server answers with. The remote client re-raises the same classes from the
server's answers, so once it lands these belong in :mod:`memory_plugin.errors` (the core may not import this
package); until then they live here. No message ever holds a secret: they name key ids, fields and limits only.
"""

from __future__ import annotations

from typing import ClassVar

from ..errors import MemoryPluginError


class ServerError(MemoryPluginError):
    """Root of the errors the server answers with before running an operation."""

    http_status: ClassVar[int] = 500


class AuthenticationError(ServerError, PermissionError):
    """The request does not prove who sent it: no or a malformed ``Authorization`` header, an unknown or revoked
    access key, a wrong secret or signature, a date too far from the server's clock, or a replayed signature."""

    http_status: ClassVar[int] = 401


class ForbiddenError(ServerError, PermissionError):
    """The access key is valid but may not do this: another app, a tenant outside the key, a write with a
    read-only key, or store / key administration without an admin key."""

    http_status: ClassVar[int] = 403


class RequestTooLargeError(ServerError, ValueError):
    """The request body is larger than the server accepts."""

    http_status: ClassVar[int] = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"request body of {size} bytes is over the limit of {limit} bytes")


class RateLimitedError(ServerError, RuntimeError):
    """The access key sent more requests than its rate allows; ``retry_after`` is how many seconds to wait."""

    http_status: ClassVar[int] = 429

    def __init__(self, key_id: str, retry_after: int) -> None:
        self.key_id = key_id
        self.retry_after = retry_after
        super().__init__(f"access key {key_id} is over its request rate; retry after {retry_after} s")


class KeyNotFoundError(ServerError, LookupError):
    """No access key with that id exists."""

    http_status: ClassVar[int] = 404
