"""The background worker: runs pending extraction jobs (``add(..., sync=False)``) and, when idle, brings the
vector index up to date. Jobs live in the record, so they survive a crash and resume when the store is opened
again; a job whose extraction fails is retried with back-off, then marked failed with its error.

The worker is supervised: whatever fails in its loop (the index, the record, a bug), it logs the fault, shows it
on the jobs it holds up (see ``extraction_status()``), backs off and keeps running. Back-off is timed by the
monotonic clock of this process, so a wall clock stepped back cannot hold a retry (or ``flush()``) for an hour;
after a restart every pending job is due at once. Once the interpreter begins to exit, the worker starts no
index work (Chroma cannot start then) and faults are no longer reported on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from .errors import MemoryPluginError, MemoryStoreNotFoundError
from .ingest import run_job
from .lifecycle import shutting_down
from .models import ExtractionJob
from .storage.record import now

if TYPE_CHECKING:
    from .engine import Engine

MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
IDLE_WAIT_SECONDS = 0.5
# After a fault of the worker itself, it waits this long, doubling with each fault in a row up to the maximum.
FAULT_DELAY_SECONDS = 0.5
MAX_FAULT_DELAY_SECONDS = 10.0
RAW_OUTPUT_CHARACTERS = 4000
# Each open store is pruned of what its retention settings expire (and of old idempotency keys) this often.
PRUNE_INTERVAL_SECONDS = 3600.0
log = logging.getLogger("memory_plugin")


class ExtractionWorker:
    """One daemon thread per engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._due: dict[int, float] = {}  # job seq -> time.monotonic() its retry is due
        self._faults = 0  # in a row
        self.error: str | None = None  # the worker's last fault, until a round of work succeeds
        self._pruned: dict[int, float] = {}  # store id -> time.monotonic() of its last prune

    def ensure_started(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="memory-plugin-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._engine.notify_jobs()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._work()
            except Exception as e:  # supervised: the worker outlives any fault; the work stays in the record
                self._fault(e)
                continue
            self._faults, self.error = 0, None
            if busy:
                continue
            with self._engine.jobs_changed:
                if not self._stop.is_set():
                    self._engine.jobs_changed.wait(IDLE_WAIT_SECONDS)

    def explain(self, jobs: list[ExtractionJob]) -> list[ExtractionJob]:
        """``jobs`` as a user should see them: while the worker itself is faulty, the unfinished jobs that have no
        error of their own say why they wait."""
        if self.error is None:
            return jobs
        return [
            job.model_copy(update={"error": f"background worker: {self.error}"})
            if job.state != "failed" and not job.error
            else job
            for job in jobs
        ]

    def _work(self) -> bool:
        """Run one due job, else bring the index up to date. True when there may be more jobs at once."""
        if self._run_next_job():
            return True
        if not shutting_down() and self._engine.index.pending:
            self._engine.index.catch_up()
        self._prune_when_due()
        return False

    def _prune_when_due(self) -> None:
        clock = time.monotonic()
        for store_id in self._engine.open_store_ids():
            if clock - self._pruned.get(store_id, -PRUNE_INTERVAL_SECONDS) < PRUNE_INTERVAL_SECONDS:
                continue
            self._pruned[store_id] = clock
            store = self._engine.store_handle(store_id)
            if store is not None:
                with contextlib.suppress(MemoryStoreNotFoundError):  # deleted meanwhile: nothing left to prune
                    self._engine.prune(store, background=True)

    def _fault(self, e: Exception) -> None:
        self._faults += 1
        delay = min(MAX_FAULT_DELAY_SECONDS, FAULT_DELAY_SECONDS * 2 ** (self._faults - 1))
        self.error = f"{type(e).__name__}: {e}"[:500]
        if shutting_down():  # e.g. a module that cannot load any more: nothing to report, the work is stored
            log.debug("memory_plugin worker at exit: %s", self.error)
        else:
            log.warning(
                "memory_plugin worker: %s; trying again in %.1f s",
                self.error,
                delay,
                exc_info=not isinstance(e, MemoryPluginError),  # a bug or a backend fault: keep its traceback
            )
        self._engine.notify_jobs()  # flush() and extraction_status() readers see the fault
        self._stop.wait(delay)

    def _claim(self) -> sqlite3.Row | None:
        store_ids = self._engine.open_store_ids()
        if not store_ids:
            return None
        clock = time.monotonic()
        self._due = {seq: due for seq, due in self._due.items() if due > clock}  # a job past its time is due
        waiting = list(self._due)
        with self._engine.record.transaction() as conn:
            job: sqlite3.Row | None = conn.execute(
                f"SELECT * FROM jobs WHERE state = 'pending' AND store_id IN ({','.join('?' * len(store_ids))})"
                f" AND seq NOT IN ({','.join('?' * len(waiting))}) ORDER BY seq LIMIT 1",
                [*store_ids, *waiting],
            ).fetchone()
            if job is not None:
                conn.execute("UPDATE jobs SET state = 'running' WHERE seq = ?", (job["seq"],))
        return job

    def _run_next_job(self) -> bool:
        job = self._claim()
        if job is None:
            return False
        seq = int(job["seq"])
        store = self._engine.store_handle(int(job["store_id"]))
        try:
            if store is None:
                raise MemoryPluginError("the memory store was closed or deleted")
            run_job(self._engine.record, self._engine.index, store, job)
            self._due.pop(seq, None)
        except Exception as e:  # any failure is recorded on the job; the worker lives on
            attempts = int(job["attempts"]) + 1
            # An extractor that already retried (e.g. an LLM that twice answered unusable JSON) says so.
            final = attempts >= MAX_ATTEMPTS or getattr(e, "retryable", True) is False
            state = "failed" if final else "pending"
            raw = getattr(e, "raw_output", None)
            delay = RETRY_DELAY_SECONDS * 2 ** (attempts - 1)
            log.warning("memory_plugin extraction job %s attempt %d failed: %s", seq, attempts, e)
            with self._engine.record.transaction() as conn:
                conn.execute(
                    "UPDATE jobs SET state = ?, attempts = ?, error = ?, raw_output = ?, not_before = ? WHERE seq = ?",
                    (
                        state,
                        attempts,
                        f"{type(e).__name__}: {e}"[:1000],
                        raw[:RAW_OUTPUT_CHARACTERS] if isinstance(raw, str) else None,
                        now() + delay,  # for information: retries are timed by this process's monotonic clock
                        seq,
                    ),
                )
            if final:
                self._due.pop(seq, None)
            else:
                self._due[seq] = time.monotonic() + delay
        self._engine.notify_jobs()
        return True
