"""One owner process per data folder: an exclusive ``flock`` on ``<folder>/LOCK``.

The kernel drops the lock when the owner dies (even by SIGKILL), so a crash never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

from ..errors import StorageError, StoreLockedError

_held_in_process: set[str] = set()
_held_lock = threading.Lock()


class FolderLock:
    """Holds ``<folder>/LOCK`` exclusively until :meth:`release`. Fails at once, never waits."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "LOCK"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        key = str(self.path.resolve())
        with _held_lock:
            if key in _held_in_process:
                raise StoreLockedError(
                    f"data folder {self.path.parent} is already open in this process (pid {os.getpid()}); "
                    "share one MemoryClient or close the other first"
                )
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise StorageError(f"cannot open the data folder {self.path.parent}: {e.strerror}") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise StoreLockedError(
                    f"data folder {self.path.parent} is in use by {holder}; one process owns a data folder at a time"
                ) from None
            os.ftruncate(fd, 0)
            info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            os.pwrite(fd, json.dumps(info).encode(), 0)
            self._fd = fd
            _held_in_process.add(key)

    def release(self) -> None:
        if self._fd is None:
            return
        with _held_lock:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            _held_in_process.discard(str(self.path.resolve()))

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the inherited descriptor without unlocking. The lock belongs to the open
        file, which the parent shares: ``LOCK_UN`` from here would release the parent's lock, while closing this
        duplicate does not (and keeps a crashed parent's lock from living on in the child). Takes no lock: one may
        have been held by a thread that does not exist in the child."""
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        _held_in_process.discard(str(self.path.resolve()))  # the child may open the folder once the parent is done


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"process {info['pid']} on {info['host']} (since {since})"
    except (ValueError, KeyError, TypeError, OSError):
        return "another process"
