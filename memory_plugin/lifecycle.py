"""The life of an engine beside its operations: the gate close() drains, fork(), and interpreter shutdown.

- **close() racing live calls.** Every public call passes the :class:`OperationGate`. ``close()`` first refuses new
  calls (``ClientClosedError``), then waits, bounded, for the calls in flight, and only then closes the worker,
  index, record and lock: a call never has its storage closed under it, and nothing re-opens it after close.
- **fork() after open.** A child forked from a process with an open client inherits its folder lock, record
  connections and Chroma client. It must never release or close them: unlocking (or writing ``owner_state``) hands
  the parent's live folder to another process, closing an SQLite connection can checkpoint the WAL the parent
  writes, and Chroma's shutdown hangs in a child. So after a fork every engine alive in the child is disarmed (see
  :func:`track`): its calls raise ``ClientClosedError``, its close() and atexit hook do nothing, and the inherited
  connections are kept for the life of the child (:func:`keep_forever`), never finalised.
- **Interpreter shutdown.** Once Python begins to exit it refuses new threads and futures, which Chroma needs to
  start: :func:`shutting_down` tells the worker and the index to start nothing new then.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from .errors import ClientClosedError

CLOSED_MESSAGE = "this client is closed; create a new MemoryClient"
FORKED_MESSAGE = (
    "this client was opened by process {parent} before it forked; a forked child cannot use its parent's client "
    "(one process owns a data folder at a time): open a new MemoryClient in the child after the parent has closed "
    "its own"
)


class OperationGate:
    """Counts the calls in flight; :meth:`close` refuses new ones and waits for those in flight."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._open = True
        self._forked_from: int | None = None
        self._depth = threading.local()  # this thread's calls in flight (a call may make another)

    @property
    def is_open(self) -> bool:
        return self._open

    def _refuse_when_closed(self) -> None:
        if self._forked_from is not None:
            raise ClientClosedError(FORKED_MESSAGE.format(parent=self._forked_from))
        if not self._open:
            raise ClientClosedError(CLOSED_MESSAGE)

    @contextmanager
    def call(self) -> Iterator[None]:
        """One public call: refused once closing has begun, and waited for by :meth:`close` while it runs."""
        self._refuse_when_closed()  # before taking any lock: after a fork, one may be held by a vanished thread
        with self._changed:
            self._refuse_when_closed()
            self._in_flight += 1
        self._depth.value = getattr(self._depth, "value", 0) + 1
        try:
            yield
        finally:
            self._depth.value -= 1
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def close(self, timeout: float) -> bool:
        """Refuse new calls, then wait up to ``timeout`` seconds for the calls in flight on other threads. Returns
        False when the gate was already closed (or disarmed after a fork): there is nothing left to close."""
        if self._forked_from is not None:
            return False
        with self._changed:
            if not self._open:
                return False
            self._open = False
            own = getattr(self._depth, "value", 0)  # close() called from inside a call does not wait for itself
            self._changed.wait_for(lambda: self._in_flight <= own, timeout)
        return True

    def disarm_after_fork(self, parent: int) -> None:
        """In a forked child: refuse every call for good, without taking a lock."""
        self._forked_from = parent
        self._open = False


class Gated(Protocol):
    _gate: OperationGate


G = TypeVar("G", bound=Gated)
P = ParamSpec("P")
R = TypeVar("R")


def gated(method: Callable[Concatenate[G, P], R]) -> Callable[Concatenate[G, P], R]:
    """Run a method of an object with a ``_gate`` as one call through that gate."""

    @functools.wraps(method)
    def call(owner: G, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with owner._gate.call():
            return method(owner, *args, **kwargs)

    return call


class Forkable(Protocol):
    def disarm_after_fork(self, parent: int) -> None: ...


_live: weakref.WeakSet[Forkable] = weakref.WeakSet()
_hooks = threading.Lock()
_hooks_installed = False
_shutdown_began = threading.Event()
_parent_pid = os.getpid()


def track(engine: Forkable) -> None:
    """Disarm ``engine`` in any child this process forks from now on."""
    global _hooks_installed
    with _hooks:
        if not _hooks_installed:
            os.register_at_fork(before=_note_parent, after_in_child=_disarm_in_child)
            # Runs when the interpreter starts to exit, before it joins threads and before atexit hooks: the
            # moment from which new threads and futures are refused (concurrent.futures uses the same hook).
            register = getattr(threading, "_register_atexit", None)
            if register is not None:
                try:
                    register(_shutdown_began.set)
                except RuntimeError:  # already exiting
                    _shutdown_began.set()
            _hooks_installed = True
        _live.add(engine)


def _note_parent() -> None:
    global _parent_pid
    _parent_pid = os.getpid()


def _disarm_in_child() -> None:
    for engine in list(_live):
        engine.disarm_after_fork(_parent_pid)


def shutting_down() -> bool:
    """True once the interpreter has begun to exit."""
    return _shutdown_began.is_set() or sys.is_finalizing() or not threading.main_thread().is_alive()


def keep_forever(*objects: object) -> None:
    """Never finalise ``objects``, not even at interpreter exit (a forked child's inherited connections: closing
    them would act on the parent's files). A deliberate leak, once per fork."""
    for item in objects:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(item))
