"""The connections to one PostgreSQL database: a pool shared by the threads of a process, one transaction per
block, and the errors that say what went wrong without naming a password.

Reads run in ``REPEATABLE READ READ ONLY`` transactions, so everything one reader reads comes from one snapshot;
writes run in ``READ COMMITTED`` transactions and lock what they change (see :mod:`.writer`). A connection that
broke while idle in the pool (the database restarted) is noticed when the transaction begins and replaced, so
the first call after an outage does not fail on a dead connection; a call made during the outage fails with a
:class:`StorageError` (HTTP 503) and writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from ...errors import ClientClosedError, MemoryPluginError, MemoryStoreNotFoundError, StorageError
from .schema import prepare_schema

Connection = psycopg.Connection[dict[str, Any]]
READ_FAILURE = "cannot read the record"
WRITE_FAILURE = "cannot write the record"
log = logging.getLogger("memory_plugin")


def describe(dsn: str) -> str:
    """The database a connection string names, for messages: ``user@host:port/dbname``, never the password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(a malformed connection string)"
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    return f"{parts.get('user') or ''}@{host}:{port}/{parts.get('dbname') or ''}".lstrip("@")


def reason(error: psycopg.Error) -> str:
    """What the database said, without the DETAIL lines (which may quote values)."""
    primary = getattr(error.diag, "message_primary", None)
    return str(primary or str(error).split("\n")[0] or type(error).__name__)


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Rows map to the domain exactly as SQLite rows do: jsonb stays the JSON text the SQLite record stores.
    conn.adapters.register_loader("jsonb", TextLoader)


class Database:
    """A pool of connections to one PostgreSQL database, with the schema prepared.

    Args:
        dsn: a libpq connection string or URI (``postgresql://user@host:5432/dbname``).
        max_connections: connections this process opens at most.
        timeout: seconds a call waits for a connection (when the database is unreachable) before it fails.

    Raises:
        StorageError: the database cannot be reached, or its schema is newer than this memory-plugin's.
    """

    def __init__(self, dsn: str, max_connections: int = 8, timeout: float = 5.0) -> None:
        self.where = describe(dsn)
        self._timeout = timeout
        self._max = max_connections
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max_connections,
            open=False,
            configure=_configure,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(timeout))},
            timeout=timeout,
            # The pool's reconnection backoff doubles without a bound for this long, so after a long outage it could
            # wait as long again before its next try. Given up after one call's wait instead, the next call that
            # needs a connection starts trying afresh: a server reconnects within seconds of the database's return.
            reconnect_timeout=timeout,
            name="memory-plugin",
        )
        self._local = threading.local()
        self._closed = False
        try:
            self._pool.open(wait=True, timeout=timeout)
        except (PoolTimeout, psycopg.Error) as e:
            self._pool.close(timeout=0)
            raise StorageError(f"cannot connect to the database {self.where} within {timeout:g} s") from e
        try:
            with self._pool.connection(timeout=timeout) as conn:
                prepare_schema(conn, self.where)
        except psycopg.Error as e:
            self._pool.close(timeout=0)
            raise StorageError(f"cannot prepare the database {self.where}: {reason(e)}") from e
        except BaseException:
            self._pool.close(timeout=0)
            raise

    def close(self) -> None:
        self._closed = True
        self._pool.close(timeout=5)

    def abandon_after_fork(self) -> list[Any]:
        """In a forked child: refuse every use; the parent's connections are kept, never closed (closing a
        libpq connection in a child would end the parent's session)."""
        self._closed = True
        return [self._pool]

    @contextmanager
    def transaction(self, read_only: bool) -> Iterator[Connection]:
        """One transaction on a pooled connection: a consistent snapshot for reads, all or nothing for writes."""
        if self._closed:
            raise ClientClosedError("the record is closed; create a new MemoryClient")
        failure = READ_FAILURE if read_only else WRITE_FAILURE
        conn = self._begin(read_only, failure)
        try:
            with database_errors(failure):
                yield conn
                conn.execute("COMMIT")
        except BaseException:
            if conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.UNKNOWN:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
            raise
        finally:
            self._pool.putconn(conn)  # a broken connection is replaced by the pool

    def _begin(self, read_only: bool, failure: str) -> Connection:
        """A pooled connection inside ``BEGIN``. Connections that died while idle (a restart of the database) are
        handed back, to be replaced, and the next one is tried: nothing was sent on them."""
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" if read_only else "BEGIN"
        last: psycopg.Error | None = None
        for _ in range(self._max + 1):
            try:
                conn: Connection = self._pool.getconn(timeout=self._timeout)
            except PoolTimeout as e:
                raise StorageError(f"{failure}: the database {self.where} is unreachable") from e
            try:
                conn.execute(begin)
                return conn
            except psycopg.OperationalError as e:
                last = e
                self._pool.putconn(conn)
        raise StorageError(f"{failure}: the database {self.where} is unreachable: {reason(last)}" if last else failure)


@contextmanager
def database_errors(failure: str) -> Iterator[None]:
    """A database error inside becomes the domain's: a write to a deleted store is
    :class:`MemoryStoreNotFoundError`, anything else a :class:`StorageError` saying ``failure`` and why."""
    try:
        yield
    except MemoryPluginError:
        raise
    except errors.ForeignKeyViolation as e:
        raise MemoryStoreNotFoundError("the memory store was deleted meanwhile") from e
    except psycopg.Error as e:
        raise StorageError(f"{failure}: {reason(e)}") from e
