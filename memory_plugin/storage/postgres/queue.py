"""Background extraction jobs in the PostgreSQL record (:class:`~memory_plugin.storage.base.JobQueue`), shared by
every memory server on the database.

A worker claims the oldest due job with ``FOR UPDATE SKIP LOCKED`` (claimers never wait for each other) and holds
it under a **lease**: the job names its worker and an expiry on the database's clock, which the worker pushes back
while it runs (:meth:`PostgresJobQueue.renew`). A worker killed mid-job simply stops renewing; when the lease runs
out, another server claims the job again. Nothing is lost, because the job's result is written in the same
transaction that removes the job.

**Fencing.** Each claim increments the job's ``lease`` number and the claimant keeps it; :meth:`finish` removes the
job only if that number is still the job's. A worker that was presumed dead (it stalled past its lease) and comes
back finds its claim superseded and writes nothing, so a job's result is applied exactly once.

**One running job per tenant.** A unique index on the running jobs' (store, app, tenant) lets at most one
extraction of a tenant run at a time, so two servers extracting the same user's messages at once cannot both add
the same fact.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from psycopg import errors

from ...clock import now
from ...errors import StorageError
from ..base import Job, NewJob, RecordWriter
from ..sqlite.rows import dumps, row_claimed_job
from .writer import PostgresWriter

RAW_OUTPUT_CHARACTERS = 4000
_CLAIM_TRIES = 3
_NOW = "extract(epoch FROM clock_timestamp())"


def _writer(tx: RecordWriter) -> PostgresWriter:
    if not isinstance(tx, PostgresWriter):
        raise TypeError("the PostgreSQL job queue works inside PostgreSQL record transactions only")
    return tx


class PostgresJobQueue:
    def __init__(self, record: Any) -> None:
        self._record = record  # a PostgresRecord (not imported: it imports this module)

    def enqueue(self, tx: RecordWriter, store_id: int, job: NewJob) -> None:
        payload = {"message_ids": job.message_ids, "text": job.text, "metadata": job.metadata,
                   "timestamp": job.timestamp.timestamp()}  # fmt: skip
        scope = job.scope
        _writer(tx).conn.execute(
            "INSERT INTO jobs (store_id, app_id, tenant_id, agent_id, run_id, payload, state, request_id, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s::jsonb, 'pending', %s, %s)",
            (store_id, scope.app_id, scope.tenant_id, scope.agent_id, scope.run_id, dumps(payload), job.request_id,
             now()),
        )  # fmt: skip

    def claim(
        self, store_ids: Collection[int] | None, skip: Collection[int], worker: str, lease_seconds: float
    ) -> Job | None:
        """The oldest due job (pending, or running with its lease run out) of these stores (``None``: every store)
        whose tenant has no other job running, leased to ``worker``."""
        if store_ids is not None and not store_ids:
            return None
        for _ in range(_CLAIM_TRIES):
            try:
                return self._claim(store_ids, skip, worker, lease_seconds)
            except StorageError as e:  # another server started a job of the same tenant at this very moment
                if not isinstance(e.__cause__, errors.UniqueViolation):
                    raise
        return None

    def _claim(
        self, store_ids: Collection[int] | None, skip: Collection[int], worker: str, lease_seconds: float
    ) -> Job | None:
        stores = "TRUE" if store_ids is None else "j.store_id = ANY(%(stores)s::bigint[])"
        with self._record.write() as tx:
            row = tx.conn.execute(
                "WITH candidate AS ("
                " SELECT j.seq FROM jobs j WHERE"
                f" ((j.state = 'pending' AND j.not_before <= {_NOW} AND NOT EXISTS ("
                "   SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.store_id = j.store_id"
                "   AND r.app_id = j.app_id AND r.tenant_id = j.tenant_id))"
                f"  OR (j.state = 'running' AND j.lease_until < {_NOW}))"
                f" AND {stores} AND NOT (j.seq = ANY(%(skip)s::bigint[]))"
                " ORDER BY j.seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " UPDATE jobs SET state = 'running', lease = jobs.lease + 1, lease_owner = %(worker)s,"
                f" lease_until = {_NOW} + %(lease)s FROM candidate WHERE jobs.seq = candidate.seq RETURNING jobs.*",
                {"stores": list(store_ids or ()), "skip": list(skip), "worker": worker, "lease": lease_seconds},
            ).fetchone()
        return None if row is None else row_claimed_job(row, int(row["lease"]))

    def renew(self, job: Job, lease_seconds: float) -> bool:
        with self._record.write() as tx:
            cursor = tx.conn.execute(
                f"UPDATE jobs SET lease_until = {_NOW} + %s WHERE seq = %s AND lease = %s AND state = 'running'",
                (lease_seconds, job.position, job.lease),
            )
            return bool(cursor.rowcount)

    def finish(self, tx: RecordWriter, job: Job) -> bool:
        writer = _writer(tx)
        # The store's content lock before the job's row: the order of every writer (see .writer); a delete_all
        # holding the lock and waiting for this row would otherwise deadlock with this transaction.
        writer.lock_content(job.store_id)
        cursor = writer.conn.execute(
            "DELETE FROM jobs WHERE seq = %s AND lease = %s AND state = 'running'", (job.position, job.lease)
        )
        return bool(cursor.rowcount)

    def fail(self, job: Job, error: str, raw_output: str | None, final: bool, retry_in: float) -> None:
        with self._record.write() as tx:
            tx.conn.execute(
                "UPDATE jobs SET state = %s, attempts = %s, error = %s, raw_output = %s,"
                f" not_before = {_NOW} + %s, lease_owner = NULL, lease_until = NULL"
                " WHERE seq = %s AND lease = %s AND state = 'running'",
                ("failed" if final else "pending", job.attempts + 1, error[:1000],
                 None if raw_output is None else raw_output[:RAW_OUTPUT_CHARACTERS], retry_in, job.position,
                 job.lease),
            )  # fmt: skip

    def retry_failed(self, tx: RecordWriter, store_id: int) -> int:
        cursor = _writer(tx).conn.execute(
            "UPDATE jobs SET state = 'pending', attempts = 0, not_before = 0 WHERE store_id = %s AND state = 'failed'",
            (store_id,),
        )
        return int(cursor.rowcount)

    def recover(self) -> None:
        """Nothing to do when a server starts: the jobs of a server that died are claimed again when their leases
        run out (another server may be running them right now)."""
