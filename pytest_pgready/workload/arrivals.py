"""Open-model arrivals on time: one Linux timerfd per Locust process wakes the user that is due.

gevent's loop (libev) rounds the timeout of its epoll_wait() up to whole milliseconds, so a user that
sleeps until its next arrival with gevent.sleep() goes on the wire 0-1 ms late (0.6-0.7 ms at the median
at 200/s), and every arrival due within the same millisecond wakes in the same loop iteration: the
requests of users scheduled apart go out together and meet in the server. pgbench sleeps with a
microsecond timeout. A timerfd watched by the same loop is as precise: epoll returns when it expires,
whatever its own timeout was. The users that are due at once still wake together, in the order due.

Where timerfd or a CLOCK_MONOTONIC perf_counter() is missing (not Linux, a seccomp filter), `sleep_until`
falls back to gevent.sleep().
"""

from __future__ import annotations

import ctypes
import heapq
import os
import sys
import time
from typing import Any

import gevent
from gevent.hub import Waiter, get_hub

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK  # Linux defines TFD_NONBLOCK and TFD_CLOEXEC as these two
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class _Clock:
    """The process's timerfd, its io watcher and the users waiting on it (a heap by due time)."""

    def __init__(self, libc: Any, fd: int) -> None:
        self.libc, self.fd = libc, fd
        self.heap: list[list[Any]] = []  # [due, seq, waiter or None once cancelled]
        self.seq = 0
        self.armed = float("inf")
        self.spec = _Itimerspec()
        self.hub = get_hub()
        self.watcher = self.hub.loop.io(fd, 1)
        self.watcher.start(self._fire)

    def sleep_until(self, due: float) -> None:
        self.seq += 1
        entry = [due, self.seq, Waiter(self.hub)]
        heapq.heappush(self.heap, entry)
        if due < self.armed:
            self._arm(due)
        try:
            entry[2].get()
        except BaseException:
            entry[2] = None  # killed while asleep (Locust stopping the user): nobody to wake
            raise

    def _arm(self, due: float) -> None:
        self.armed = due
        whole = int(due)
        self.spec.it_value.tv_sec = whole
        self.spec.it_value.tv_nsec = max(1, int((due - whole) * 1e9))  # 0/0 would disarm it
        if self.libc.timerfd_settime(self.fd, _TFD_TIMER_ABSTIME, ctypes.byref(self.spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime failed")

    def _fire(self) -> None:
        try:
            os.read(self.fd, 8)
        except BlockingIOError:  # re-armed since it expired: nothing due yet
            pass
        now = time.perf_counter()
        heap, run = self.heap, self.hub.loop.run_callback
        # each due user is queued to run, not run from here: the first one sees the others waiting to run
        # and does not wait alone in the kernel while they are due (see user._alone)
        while heap and heap[0][0] <= now:
            waiter = heapq.heappop(heap)[2]
            if waiter is not None:
                run(waiter.switch, None)
        while heap and heap[0][2] is None:
            heapq.heappop(heap)
        self.armed = float("inf")
        if heap:
            self._arm(heap[0][0])


_clock: _Clock | None = None
_unavailable = False


def _forget_after_fork() -> None:
    """A forked child shares its parent's timerfd: reading it there would steal the parent's wake-ups.
    The child drops its copy (watcher and descriptor) and makes its own on first use."""
    global _clock
    clock, _clock = _clock, None
    if clock is not None:
        try:
            clock.watcher.close()
        except Exception:  # noqa: BLE001 - a loop already torn down by the fork: nothing left to stop
            pass
        try:
            os.close(clock.fd)
        except OSError:
            pass


os.register_at_fork(after_in_child=_forget_after_fork)


def _get() -> _Clock | None:
    global _clock, _unavailable
    if _clock is not None or _unavailable:
        return _clock
    try:
        if not sys.platform.startswith("linux"):
            raise OSError("timerfd is Linux's")
        if time.get_clock_info("perf_counter").implementation != "clock_gettime(CLOCK_MONOTONIC)":
            raise OSError("perf_counter() is not CLOCK_MONOTONIC")
        libc = ctypes.CDLL(None, use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec), ctypes.c_void_p]
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create failed")
        _clock = _Clock(libc, fd)
    except (OSError, AttributeError):
        _unavailable = True
    return _clock


def precise() -> bool:
    """Whether this process wakes its open-model users with the timerfd (else gevent.sleep())."""
    return _get() is not None


def sleep_until(due: float) -> None:
    """Sleep this greenlet until perf_counter() reaches `due`, to the microsecond where the timerfd is there."""
    clock = _get()
    if clock is None:
        gevent.sleep(max(0.0, due - time.perf_counter()))
    elif due > time.perf_counter():
        clock.sleep_until(due)
    else:
        gevent.sleep(0)
