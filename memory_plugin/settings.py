"""Engine settings: the knobs of one deployment, with the defaults the benchmarks chose."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidArgumentError


@dataclass(frozen=True)
class Settings:
    """How an engine runs.

    Attributes:
        exact_scan_limit: when a search's filter matches at most this many memories, their vector candidates come
            from an exact scan of the record's embeddings (a few milliseconds for 4,000); above it, from the vector
            index. ``0`` always asks the index (useful to test that path on a small store).
        close_wait_seconds: how long ``close()`` waits for calls in flight before it closes the storage.
        job_lease_seconds: how long a background job stays with the worker that claimed it without news from it
            (the worker renews the lease while it runs); after that another server may take it over.
        vector_memory_limit: at most this many memories (all stores together) are held in memory as embedding
            matrices, so that vector candidates are exact at any scope size (about 2.4 KB per memory of 384
            dimensions: 235 MB per 100,000); a store beyond it uses the vector index. ``0`` holds none.
        vector_shortlist_above: a scan of the in-memory matrix over more memories than this first ranks them by
            their projection onto 128 principal directions and scores exactly only the best 2% (at least 1,000):
            recall@40 against the full scan was 0.996 on a needle among near-duplicates and 1.000 on real text
            at 100,000 memories (``benchmarks/vector_recall.py``), in a third of the time. ``0`` always scans
            every memory.
    """

    exact_scan_limit: int = 4000
    close_wait_seconds: float = 30.0
    job_lease_seconds: float = 60.0
    vector_memory_limit: int = 200_000
    vector_shortlist_above: int = 20_000

    def __post_init__(self) -> None:
        for field in ("exact_scan_limit", "vector_memory_limit", "vector_shortlist_above"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidArgumentError(field, "must be an integer >= 0")
        if not isinstance(self.close_wait_seconds, (int, float)) or self.close_wait_seconds < 0:
            raise InvalidArgumentError("close_wait_seconds", "must be a number of seconds >= 0")
        if not isinstance(self.job_lease_seconds, (int, float)) or not self.job_lease_seconds > 0:
            raise InvalidArgumentError("job_lease_seconds", "must be a number of seconds > 0")
