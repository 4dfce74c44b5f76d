"""The background worker: runs pending extraction jobs (``add(..., sync=False)``) and, when idle, brings the
vector index up to date. Jobs live in the record, so they survive a crash and resume when the store is opened
again; a job whose extraction fails is retried with back-off, then marked failed with its error."""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import TYPE_CHECKING

from .errors import MemoryPluginError
from .ingest import run_job
from .storage.record import now

if TYPE_CHECKING:
    from .engine import Engine

MAX_ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
IDLE_WAIT_SECONDS = 0.5
RAW_OUTPUT_CHARACTERS = 4000
log = logging.getLogger("memory_plugin")


class ExtractionWorker:
    """One daemon thread per engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
                if self._run_next_job():
                    continue
                if self._engine.index.pending:
                    self._engine.index.catch_up()
            except MemoryPluginError as e:  # e.g. the disk is full: keep going, the work stays in the record
                log.warning("memory_plugin worker: %s", e)
            with self._engine.jobs_changed:
                if not self._stop.is_set():
                    self._engine.jobs_changed.wait(IDLE_WAIT_SECONDS)

    def _claim(self) -> sqlite3.Row | None:
        store_ids = self._engine.open_store_ids()
        if not store_ids:
            return None
        marks = ",".join("?" * len(store_ids))
        with self._engine.record.transaction() as conn:
            job: sqlite3.Row | None = conn.execute(
                f"SELECT * FROM jobs WHERE state = 'pending' AND not_before <= ? AND store_id IN ({marks})"
                " ORDER BY seq LIMIT 1",
                [now(), *store_ids],
            ).fetchone()
            if job is not None:
                conn.execute("UPDATE jobs SET state = 'running' WHERE seq = ?", (job["seq"],))
        return job

    def _run_next_job(self) -> bool:
        job = self._claim()
        if job is None:
            return False
        store = self._engine.store_handle(int(job["store_id"]))
        try:
            if store is None:
                raise MemoryPluginError("the memory store was closed or deleted")
            run_job(self._engine.record, self._engine.index, store, job)
        except Exception as e:  # any failure is recorded on the job; the worker lives on
            attempts = int(job["attempts"]) + 1
            # An extractor that already retried (e.g. an LLM that twice answered unusable JSON) says so.
            final = attempts >= MAX_ATTEMPTS or getattr(e, "retryable", True) is False
            state = "failed" if final else "pending"
            raw = getattr(e, "raw_output", None)
            log.warning("memory_plugin extraction job %s attempt %d failed: %s", job["seq"], attempts, e)
            with self._engine.record.transaction() as conn:
                conn.execute(
                    "UPDATE jobs SET state = ?, attempts = ?, error = ?, raw_output = ?, not_before = ? WHERE seq = ?",
                    (
                        state,
                        attempts,
                        f"{type(e).__name__}: {e}"[:1000],
                        raw[:RAW_OUTPUT_CHARACTERS] if isinstance(raw, str) else None,
                        now() + RETRY_DELAY_SECONDS * 2 ** (attempts - 1),
                        job["seq"],
                    ),
                )
        self._engine.notify_jobs()
        return True
