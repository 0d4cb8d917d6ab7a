"""The scheduler's wake-up flag: Event-like, and safe to raise from a signal handler."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from rediscron.wake import Waker


def test_set_wait_clear() -> None:
    waker = Waker()
    assert not waker.is_set()
    assert waker.wait(0.01) is False
    waker.set()
    waker.set()
    assert waker.is_set()
    assert waker.wait(5) is True
    waker.clear()
    assert not waker.is_set()


def test_many_wake_ups_never_block_the_raiser() -> None:
    waker = Waker()
    for _ in range(100_000):  # far more than a socket buffer holds
        waker.set()
    assert waker.is_set()
    waker.clear()
    assert not waker.is_set()


def test_a_descriptor_past_selects_limit_still_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rediscron.wake._SELECT_LIMIT", 0)
    waker = Waker()
    assert waker.wait(0.01) is False
    waker.set()
    assert waker.wait(5) is True


def test_set_from_another_thread_ends_a_wait() -> None:
    waker = Waker()
    threading.Timer(0.05, waker.set).start()
    started = time.monotonic()
    assert waker.wait(10) is True
    assert time.monotonic() - started < 5


@pytest.mark.timeout(10)
def test_a_signal_handler_can_raise_it_while_the_thread_is_inside_it() -> None:
    # threading.Event deadlocks here: the handler's set() waits for the lock clear() holds.
    waker = Waker()
    previous = signal.signal(signal.SIGUSR1, lambda *_: waker.set())
    sock = waker._read
    interrupted: list[bool] = []

    class Interrupted:
        def recv(self, size: int) -> bytes:
            if not interrupted:
                interrupted.append(True)
                os.kill(os.getpid(), signal.SIGUSR1)  # the handler runs in the middle of clear()
            return sock.recv(size)

    try:
        waker._read = Interrupted()  # type: ignore[assignment]
        waker.clear()
    finally:
        waker._read = sock
        signal.signal(signal.SIGUSR1, previous)
    assert interrupted
