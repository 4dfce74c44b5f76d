"""Background extraction jobs in the SQLite record (:class:`~memory_plugin.storage.base.JobQueue`).

Jobs are rows of the record, written in the transaction of the ``add`` that queued them, so they survive a crash;
one process owns the folder, so a lease is trivial (it is never taken over while the owner lives): jobs left
``running`` by a dead owner are pending again when the folder opens (:meth:`SqliteJobQueue.recover`).
"""

from __future__ import annotations

from collections.abc import Collection

from ...clock import now
from ..base import Job, NewJob, RecordWriter
from .connections import Connections
from .rows import dumps, row_claimed_job
from .writer import SqliteWriter

RAW_OUTPUT_CHARACTERS = 4000


def _connection(tx: RecordWriter) -> SqliteWriter:
    if not isinstance(tx, SqliteWriter):
        raise TypeError("the SQLite job queue works inside SQLite record transactions only")
    return tx


class SqliteJobQueue:
    def __init__(self, connections: Connections) -> None:
        self._db = connections

    def enqueue(self, tx: RecordWriter, store_id: int, job: NewJob) -> None:
        payload = {"message_ids": job.message_ids, "text": job.text, "metadata": job.metadata,
                   "timestamp": job.timestamp.timestamp()}  # fmt: skip
        scope = job.scope
        _connection(tx).execute(
            "INSERT INTO jobs (store_id, app_id, tenant_id, agent_id, run_id, payload, state, request_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, dumps(payload), job.request_id,
             now()),
        )  # fmt: skip

    def claim(
        self, store_ids: Collection[int] | None, skip: Collection[int], worker: str, lease_seconds: float
    ) -> Job | None:
        if store_ids is not None and not store_ids:
            return None
        waiting = list(skip)
        stores = "" if store_ids is None else f" AND store_id IN ({','.join('?' * len(store_ids))})"
        with self._db.transaction() as conn:
            row = conn.execute(
                f"SELECT * FROM jobs WHERE state = 'pending'{stores}"
                f" AND seq NOT IN ({','.join('?' * len(waiting))}) ORDER BY seq LIMIT 1",
                [*(store_ids or ()), *waiting],
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET state = 'running' WHERE seq = ?", (row["seq"],))
        return row_claimed_job(row)

    def renew(self, job: Job, lease_seconds: float) -> bool:
        return True  # one process owns the folder: nobody else can take the job over

    def finish(self, tx: RecordWriter, job: Job) -> bool:
        return bool(_connection(tx).execute("DELETE FROM jobs WHERE seq = ?", (job.position,)).rowcount)

    def fail(self, job: Job, error: str, raw_output: str | None, final: bool, retry_in: float) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, attempts = ?, error = ?, raw_output = ?, not_before = ? WHERE seq = ?",
                ("failed" if final else "pending", job.attempts + 1, error[:1000],
                 None if raw_output is None else raw_output[:RAW_OUTPUT_CHARACTERS], now() + retry_in, job.position),
            )  # fmt: skip

    def retry_failed(self, tx: RecordWriter, store_id: int) -> int:
        cursor = _connection(tx).execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, not_before = 0 WHERE store_id = ? AND state = 'failed'",
            (store_id,),
        )
        return int(cursor.rowcount)

    def recover(self) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE jobs SET state = 'pending' WHERE state = 'running'")
