"""A wake-up flag that a signal handler can raise safely.

``threading.Event`` holds a plain lock inside ``set()``, ``clear()`` and ``wait()``. A stop
signal runs its handler in the main thread, between two bytecodes of whatever that thread
was doing; if it was inside the event, ``set()`` from the handler waits forever for a lock
its own thread holds. This flag is a byte in a socket pair instead: raising, clearing and
waiting take no Python lock, from any thread or from a signal handler.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import time
import weakref


class Waker:
    """``set()`` / ``clear()`` / ``wait(timeout)`` like ``threading.Event``, safe in signal handlers."""

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        weakref.finalize(self, _close, self._read, self._write)

    def set(self) -> None:
        """Raise the flag: a waiting (or the next) ``wait()`` returns at once."""
        # OSError: the buffer is full of earlier wake-ups (the flag is up), or the waker is closed.
        with contextlib.suppress(OSError):
            self._write.send(b"\0")

    def clear(self) -> None:
        """Lower the flag."""
        with contextlib.suppress(OSError):  # BlockingIOError: drained
            while self._read.recv(4096):
                pass

    def is_set(self) -> bool:
        """Whether the flag is up."""
        return self.wait(0.0)

    def wait(self, timeout: float) -> bool:
        """Sleep until the flag is up or ``timeout`` seconds pass; return whether it is up."""
        deadline = time.monotonic() + min(max(0.0, timeout), _LONGEST)
        remaining = deadline - time.monotonic()
        # Linux lets select/poll of t seconds return late by t/1000 (t/200 for a niced process, at
        # most 0.1 s): sleep most of a long wait first, then the short rest, which ends within microseconds.
        margin = min(remaining / 200, 0.1) + 0.002
        if remaining > 2 * margin:
            if self._ready(remaining - margin):
                return True
            remaining = deadline - time.monotonic()
        return self._ready(max(0.0, remaining))

    def _ready(self, timeout: float) -> bool:
        if self._read.fileno() >= _SELECT_LIMIT and hasattr(select, "poll"):
            # select refuses such a descriptor (a busy host process); poll takes it, to the millisecond.
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            return bool(poller.poll(math.ceil(timeout * 1000)))
        # select, where it can: it sleeps to the microsecond, so a run fires on time, not up to 1 ms late.
        return bool(select.select([self._read], [], [], timeout)[0])


#: Longer waits are cut to this (select and poll refuse huge timeouts); callers loop anyway.
_LONGEST = 86_400.0
#: select() takes descriptors below FD_SETSIZE only (1024 on Linux).
_SELECT_LIMIT = 1024


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        sock.close()
