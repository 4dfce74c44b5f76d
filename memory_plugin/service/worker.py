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
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from ..errors import ClientClosedError, MemoryPluginError, MemoryStoreNotFoundError
from ..lifecycle import shutting_down
from ..models import ExtractionJob
from ..settings import Settings
from ..storage.base import Job, JobQueue, RecordStore, VectorIndex
from .catalog import StoreCatalog
from .ingest import StoreHandle, run_job
from .operations import JobSignal

MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
IDLE_WAIT_SECONDS = 0.5
# After a fault of the worker itself, it waits this long, doubling with each fault in a row up to the maximum.
FAULT_DELAY_SECONDS = 0.5
MAX_FAULT_DELAY_SECONDS = 10.0
# Each open store is pruned of what its retention settings expire (and of old idempotency keys) this often.
PRUNE_INTERVAL_SECONDS = 3600.0
log = logging.getLogger("memory_plugin")


class ExtractionWorker:
    """One daemon thread per service: takes jobs from the queue, runs them through the store's extractor, keeps
    the vector index up to date and prunes stores, when idle."""

    def __init__(
        self, record: RecordStore, index: VectorIndex, queue: JobQueue, settings: Settings, catalog: StoreCatalog,
        jobs: JobSignal, prune: Callable[[StoreHandle], object],
    ) -> None:  # fmt: skip
        self._record, self._index, self._queue, self._settings = record, index, queue, settings
        self._catalog, self._jobs, self._prune = catalog, jobs, prune
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = threading.Lock()
        self._due: dict[int, float] = {}  # job position -> time.monotonic() its retry is due
        self._faults = 0  # in a row
        self.error: str | None = None  # the worker's last fault, until a round of work succeeds
        self._pruned: dict[int, float] = {}  # store id -> time.monotonic() of its last prune
        # Who holds a job's lease: unique among every process taking jobs from a shared queue.
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def ensure_started(self) -> None:
        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memory-plugin-worker", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._jobs.notify()
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
            with self._jobs.changed:
                if not self._stop.is_set():
                    self._jobs.changed.wait(IDLE_WAIT_SECONDS)

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
        """Run one due job, else bring the index up to date and prune. True when there may be more jobs at once."""
        if self._run_next_job():
            return True
        self._record.catch_up()
        if not shutting_down() and self._index.pending:
            self._index.catch_up()
        self._prune_when_due()
        return False

    def _prune_when_due(self) -> None:
        moment = time.monotonic()
        for store_id in self._catalog.open_ids():
            if moment - self._pruned.get(store_id, -PRUNE_INTERVAL_SECONDS) < PRUNE_INTERVAL_SECONDS:
                continue
            self._pruned[store_id] = moment
            store = self._catalog.by_id(store_id)
            if store is not None:
                with contextlib.suppress(MemoryStoreNotFoundError, ClientClosedError):  # deleted or closing meanwhile
                    self._prune(store)

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
        self._jobs.notify()  # flush() and extraction_status() readers see the fault
        self._stop.wait(delay)

    def _claim(self) -> Job | None:
        moment = time.monotonic()
        self._due = {position: due for position, due in self._due.items() if due > moment}  # past its time: due
        return self._queue.claim(
            self._catalog.claimable_ids(), list(self._due), self.identity, self._settings.job_lease_seconds
        )

    def _run_next_job(self) -> bool:
        job = self._claim()
        if job is None:
            return False
        try:
            store = self._catalog.for_job(job.store_id)
            if store is None:
                raise MemoryPluginError("the memory store was closed or deleted")
            with self._leased(job):
                run_job(self._record, self._index, self._queue, self._settings, store, job)
            self._due.pop(job.position, None)
        except Exception as e:  # any failure is recorded on the job; the worker lives on
            attempts = job.attempts + 1
            # An extractor that already retried (e.g. an LLM that twice answered unusable JSON) says so.
            final = attempts >= MAX_ATTEMPTS or getattr(e, "retryable", True) is False
            raw = getattr(e, "raw_output", None)
            delay = RETRY_DELAY_SECONDS * 2 ** (attempts - 1)
            log.warning("memory_plugin extraction job %s attempt %d failed: %s", job.position, attempts, e)
            # This process times its retries by its monotonic clock; a shared queue also keeps the job from other
            # workers for ``delay`` by the database's clock.
            self._queue.fail(job, f"{type(e).__name__}: {e}", raw if isinstance(raw, str) else None, final, delay)
            if final:
                self._due.pop(job.position, None)
            else:
                self._due[job.position] = time.monotonic() + delay
        self._jobs.notify()
        return True

    @contextlib.contextmanager
    def _leased(self, job: Job) -> Iterator[None]:
        """Keep renewing the job's lease while the block runs (an extraction may call an LLM for minutes)."""
        lease = self._settings.job_lease_seconds
        done = threading.Event()

        def renew() -> None:
            while not done.wait(lease / 3):
                try:
                    if not self._queue.renew(job, lease):
                        return  # taken over (or deleted): finish() will refuse this claim's result
                except MemoryPluginError as e:
                    log.warning("memory_plugin worker: cannot renew the lease of job %s: %s", job.position, e)

        renewer = threading.Thread(target=renew, name="memory-plugin-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()
