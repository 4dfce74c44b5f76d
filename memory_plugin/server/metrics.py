"""The server's metrics in the Prometheus text format: requests, errors and latency by operation, and the
extraction jobs waiting in each store."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Mapping

# Upper bounds of the latency histogram's buckets, in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _label(value: str) -> str:
    """A label value escaped as the exposition format wants (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and a latency histogram per operation, kept in memory since the server started. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def observe(self, operation: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(operation, status)] += 1
            self._sums[operation] += seconds
            self._counts[operation] += 1
            counts = self._buckets[operation]
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1

    def render(self, pending_jobs: Mapping[str, int]) -> str:
        """The exposition text; ``pending_jobs`` is each store's unfinished extraction jobs now."""
        lines = [
            "# HELP memory_plugin_requests_total Requests answered, by operation and HTTP status.",
            "# TYPE memory_plugin_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            errors: dict[str, int] = defaultdict(int)
            for (operation, status), count in requests:
                lines.append(
                    f'memory_plugin_requests_total{{operation="{_label(operation)}",status="{status}"}} {count}'
                )
                if status >= 400:
                    errors[operation] += count
            lines += [
                "# HELP memory_plugin_request_errors_total Requests answered with an error (HTTP 4xx or 5xx).",
                "# TYPE memory_plugin_request_errors_total counter",
                *(
                    f'memory_plugin_request_errors_total{{operation="{_label(op)}"}} {n}'
                    for op, n in sorted(errors.items())
                ),
                "# HELP memory_plugin_request_duration_seconds Time to answer a request.",
                "# TYPE memory_plugin_request_duration_seconds histogram",
            ]
            for operation in sorted(self._counts):
                label = _label(operation)
                for bound, count in zip(BUCKETS, self._buckets[operation], strict=True):
                    lines.append(
                        f'memory_plugin_request_duration_seconds_bucket{{operation="{label}",le="{bound}"}} {count}'
                    )
                total = self._counts[operation]
                lines.append(f'memory_plugin_request_duration_seconds_bucket{{operation="{label}",le="+Inf"}} {total}')
                lines.append(
                    f'memory_plugin_request_duration_seconds_sum{{operation="{label}"}} {self._sums[operation]:.6f}'
                )
                lines.append(
                    f'memory_plugin_request_duration_seconds_count{{operation="{label}"}} {self._counts[operation]}'
                )
        lines += [
            "# HELP memory_plugin_pending_extraction_jobs Background extraction jobs not finished, by store.",
            "# TYPE memory_plugin_pending_extraction_jobs gauge",
            *(
                f'memory_plugin_pending_extraction_jobs{{store="{_label(s)}"}} {n}'
                for s, n in sorted(pending_jobs.items())
            ),
        ]
        return "\n".join(lines) + "\n"
