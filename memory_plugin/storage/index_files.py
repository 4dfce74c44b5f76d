"""What the engine checks on Chroma's files, without Chroma: a manifest of an index folder, and the segment
folders Chroma leaves behind.

Chroma trusts its files: a truncated HNSW file crashes the process (SIGSEGV), a garbage ``chroma.sqlite3`` raises
on every query, a deleted folder silently answers nothing. So at a clean close the engine records a manifest of the
folder (each file's path, size, modification time and a hash of its head and tail), and at the next open it
compares the folder with it before Chroma reads a byte: any difference and the index is rebuilt from the record.

Chroma also keeps the HNSW folder of a deleted collection on disk (and its files open until the client closes):
:func:`remove_orphan_segments` removes the folders no segment refers to any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import sqlite3
from pathlib import Path

# How much of each file's head and tail the manifest hashes: enough to see a rewritten header or a cut tail,
# cheap on an index of gigabytes.
SAMPLE_BYTES = 64 * 1024
_SEGMENT_FOLDER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
log = logging.getLogger("memory_plugin")

Manifest = dict[str, list[int | str]]


def manifest(folder: Path) -> Manifest:
    """``{relative path: [size, mtime_ns, hash of head and tail]}`` for every file under ``folder`` (empty when
    the folder is missing)."""
    files: Manifest = {}
    if not folder.is_dir():
        return files
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        status = path.stat()
        digest = hashlib.blake2b(digest_size=16)
        with path.open("rb") as f:
            digest.update(f.read(SAMPLE_BYTES))
            if status.st_size > SAMPLE_BYTES:
                f.seek(max(SAMPLE_BYTES, status.st_size - SAMPLE_BYTES))
                digest.update(f.read(SAMPLE_BYTES))
        files[path.relative_to(folder).as_posix()] = [status.st_size, status.st_mtime_ns, digest.hexdigest()]
    return files


def matches(folder: Path, recorded: Manifest) -> bool:
    """True when ``folder`` holds exactly the files ``recorded``, unchanged (never raises: unreadable is changed)."""
    try:
        return bool(recorded) and manifest(folder) == recorded
    except OSError:
        return False


def remove_orphan_segments(folder: Path) -> int:
    """Remove the segment folders of ``folder`` that no segment of its ``chroma.sqlite3`` refers to (Chroma keeps
    a deleted collection's HNSW folder). Call with the Chroma client closed. Returns how many were removed."""
    database = folder / "chroma.sqlite3"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            live = {str(row[0]) for row in conn.execute("SELECT id FROM segments")}
    except sqlite3.Error as e:  # another layout: leave the folders rather than guess
        log.warning("memory_plugin: cannot list the index segments in %s: %s", database, e)
        return 0
    orphans = [p for p in folder.iterdir() if p.is_dir() and _SEGMENT_FOLDER.match(p.name) and p.name not in live]
    for orphan in orphans:
        shutil.rmtree(orphan, ignore_errors=True)
    return len(orphans)
