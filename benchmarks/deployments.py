"""Where a recall benchmark writes: a data folder of its own (``embedded``), or the scaled-out deployment
(``postgres``: a throwaway PostgreSQL cluster and Chroma server, started here in temp folders on loopback and
removed afterwards), so that recall on both backends can be compared from the same data."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memory_plugin import MemoryClient

BACKENDS = ("embedded", "postgres")


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    what = "embedded (a data folder, the default) or postgres (PostgreSQL + a Chroma server)"
    parser.add_argument("--backend", choices=BACKENDS, default="embedded", help=what)


@contextmanager
def memory_client(backend: str = "embedded", path: Path | None = None) -> Iterator[MemoryClient]:
    """A client on ``backend``: a data folder (``path``, or a temp folder), or a throwaway scaled-out deployment."""
    if backend == "embedded":
        with tempfile.TemporaryDirectory() as folder, MemoryClient(path=path or Path(folder)) as client:
            yield client
        return
    if backend != "postgres":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    from scripts.throwaway import ThrowawayChroma, ThrowawayPostgres

    postgres = ThrowawayPostgres(fast=True)
    try:
        chroma = ThrowawayChroma()
        try:
            with MemoryClient(database=postgres.new_database(), index=chroma.url) as client:
                yield client
        finally:
            chroma.close()
    finally:
        postgres.close()
