"""Oracle writers: threads that commit unique ids through the path the application uses.

Each writer owns one connection (reconnecting with a short connect_timeout after a failure), commits
one autocommit INSERT per tick (every `interval_s`, 5 ms by default, so the pool's acknowledgements
sample time far finer than the 10 ms the drills need) and records every attempt's outcome.

A client deadline bounds every statement the way an application's driver does: at the deadline a
cancel request is sent (PostgreSQL then either aborts the statement — failed — or, for a commit
waiting on a synchronous standby, returns success with a warning — unknown); one second later the
socket is shut down (unknown). Nothing can hang a drill: stop() joins with a bound.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .oracle import ACK, FAILED, INSERT_SQL, Attempt, classify, lsn_int

CANCEL_GRACE_S = 1.0
HARNESS_DEADLINE_S = 10.0  # when the application declares no query deadline, the harness still needs one


def client_params(conninfo: str | None, *, min_connect_timeout: int = 2, max_connect_timeout: int = 5) -> dict[str, Any]:
    """libpq parameters of the application's connections, with a bounded connect_timeout for writers."""
    from psycopg.conninfo import conninfo_to_dict

    params = dict(conninfo_to_dict(conninfo)) if conninfo else {}
    try:
        ct = int(float(params.get("connect_timeout") or 0))
    except ValueError:
        ct = 0
    params["connect_timeout"] = max(min_connect_timeout, min(ct or max_connect_timeout, max_connect_timeout))
    return params


@dataclass
class _Slot:
    deadline: float = 0.0
    fd: int = -1
    conn: Any = None
    cancelled: bool = False
    shut: bool = False
    canceller: threading.Thread | None = None


class Watchdog(threading.Thread):
    """Enforces every writer's statement deadline: cancel request, then socket shutdown."""

    def __init__(self) -> None:
        super().__init__(name="pgready-watchdog", daemon=True)
        self.slots: list[tuple[threading.Lock, _Slot]] = []
        self.stop_event = threading.Event()

    def register(self) -> tuple[threading.Lock, _Slot]:
        entry = (threading.Lock(), _Slot())
        self.slots.append(entry)
        return entry

    def run(self) -> None:
        while not self.stop_event.wait(0.01):
            now = time.monotonic()
            for lock, slot in list(self.slots):
                with lock:
                    if slot.conn is None or now < slot.deadline:
                        continue
                    if not slot.cancelled:
                        slot.cancelled = True
                        slot.canceller = threading.Thread(target=_cancel, args=(slot.conn,), daemon=True)
                        slot.canceller.start()
                    elif not slot.shut and now >= slot.deadline + CANCEL_GRACE_S:
                        slot.shut = True
                        shutdown_fd(slot.fd)

    def force(self) -> None:
        """Shut every in-flight statement's socket now (used by stop() when a writer overstays)."""
        for lock, slot in list(self.slots):
            with lock:
                if slot.conn is not None and not slot.shut:
                    slot.shut = True
                    shutdown_fd(slot.fd)


# How long a cancel request may take. Longer than PgBouncer's cancel_wait_timeout (10 s): PgBouncer 1.18
# crashes when a cancel client hangs up before PgBouncer has forwarded the request (pgbouncer#801, fixed
# by #846), which a frozen server provokes. The writer does not wait for it: the socket shutdown at
# deadline + CANCEL_GRACE_S bounds the statement; this thread just finishes in the background.
CANCEL_TIMEOUT_S = 15.0


def _cancel(conn: Any) -> None:
    try:
        conn.cancel_safe(timeout=CANCEL_TIMEOUT_S)
    except Exception:  # a frozen or dead server: the socket shutdown follows
        pass


def shutdown_fd(fd: int) -> None:
    """Shut down (not close) a socket another thread is blocked on: its recv returns and libpq reports
    the connection lost. The fd stays owned by libpq, so it cannot be reused under it."""
    if fd < 0:
        return
    try:
        s = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        s.close()


class Writer(threading.Thread):
    def __init__(self, wid: int, path: str, dsn: str, *, deadline_s: float, interval_s: float,
                 watchdog: Watchdog, stop_event: threading.Event, connect_kw: dict[str, Any]) -> None:
        super().__init__(name=f"pgready-writer-{wid}", daemon=True)
        self.wid, self.path, self.dsn = wid, path, dsn
        self.deadline_s, self.interval_s = deadline_s, interval_s
        self.stop_event = stop_event
        self.connect_kw = connect_kw
        self.lock, self.slot = watchdog.register()
        self.attempts: list[Attempt] = []
        self.connect_errors = 0
        self.last_connect_error = ""
        self.errors: dict[str, int] = {}  # first line of each server error → count (read-only …)
        self.sqlstates: dict[str, int] = {}
        self._notices: list[str] = []
        self.seq = 0

    # --- one attempt -------------------------------------------------------------------------
    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None, **self.connect_kw)
        conn.add_notice_handler(lambda d: self._notices.append(d.message_primary or ""))
        return conn

    def _attempt(self, conn: Any) -> Attempt:
        import psycopg

        self.seq += 1
        self._notices.clear()
        with self.lock:
            self.slot.deadline = time.monotonic() + self.deadline_s
            self.slot.fd = conn.pgconn.socket
            self.slot.conn, self.slot.cancelled, self.slot.shut = conn, False, False
        sent = time.time()
        row, err = None, None
        try:
            row = conn.execute(INSERT_SQL, (self.wid, self.seq)).fetchone()
        except psycopg.Error as e:
            err = e
        finally:
            with self.lock:
                self.slot.conn = None
                canceller, self.slot.canceller = self.slot.canceller, None
        done = time.time()
        if canceller is not None:  # a late cancel request must not hit the next statement (bounded wait)
            canceller.join(CANCEL_GRACE_S + 0.5)
        outcome, note = classify(returned=row is not None, broken=bool(conn.broken or conn.closed),
                                 notices=self._notices)
        a = Attempt(self.wid, self.seq, self.path, sent, done, outcome, note=note)
        if row is not None:
            a.committed_at, a.tli, a.lsn, a.server_port = float(row[0]), row[1], lsn_int(row[2]), row[3]
        if err is not None:
            line = (str(err).strip().splitlines() or [err.__class__.__name__])[0][:200]
            a.note = f"{note}: {line}"
            if outcome == FAILED:
                self.errors[line] = self.errors.get(line, 0) + 1
            state = getattr(err, "sqlstate", None)
            if state:
                self.sqlstates[state] = self.sqlstates.get(state, 0) + 1
        return a

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        conn = None
        next_tick = time.monotonic()
        try:
            while not self.stop_event.is_set():
                if conn is None:
                    try:
                        conn = self._connect()
                    except Exception as e:
                        self.connect_errors += 1
                        self.last_connect_error = (str(e).strip().splitlines() or [""])[0][:200]
                        self.stop_event.wait(0.02)
                        continue
                a = self._attempt(conn)
                self.attempts.append(a)
                if conn.broken or conn.closed:
                    _close(conn)
                    conn = None
                next_tick += self.interval_s
                delay = next_tick - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
                else:
                    next_tick = time.monotonic()
        finally:
            if conn is not None:
                _close(conn)


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass


class WriterPool:
    """N writers over one or more client paths; a context manager that always stops them.

    paths: [(name, dsn), …], assigned round-robin. Writer ids start at first_id (unique per drill run,
    so several runs can share one table)."""

    def __init__(self, paths: Sequence[tuple[str, str]], n: int = 4, *, first_id: int = 1,
                 deadline_s: float = 5.0, interval_s: float = 0.005, conninfo: str | None = None) -> None:
        from psycopg.conninfo import make_conninfo

        params = client_params(conninfo)
        params.setdefault("application_name", "pgready-oracle")
        self.stop_event = threading.Event()
        self.watchdog = Watchdog()
        self.deadline_s = deadline_s or HARNESS_DEADLINE_S
        self.writers = [
            Writer(first_id + i, paths[i % len(paths)][0], make_conninfo(paths[i % len(paths)][1], **params),
                   deadline_s=self.deadline_s, interval_s=interval_s, watchdog=self.watchdog,
                   stop_event=self.stop_event, connect_kw={})
            for i in range(n)]
        self.started_at: float | None = None

    @property
    def ids(self) -> list[int]:
        return [w.wid for w in self.writers]

    @property
    def paths(self) -> list[str]:
        return list(dict.fromkeys(w.path for w in self.writers))

    def start(self) -> "WriterPool":
        self.started_at = time.time()
        self.watchdog.start()
        for w in self.writers:
            w.start()
        return self

    def stop(self, timeout: float | None = None) -> list[Attempt]:
        """Stop every writer (bounded: deadline + grace, then their sockets are shut) and return the ledger."""
        self.stop_event.set()
        limit = time.monotonic() + (timeout if timeout is not None else self.deadline_s + CANCEL_GRACE_S + 2)
        for w in self.writers:
            w.join(max(0.0, limit - time.monotonic()))
        if any(w.is_alive() for w in self.writers):
            self.watchdog.force()
            for w in self.writers:
                w.join(5)
        self.watchdog.stop_event.set()
        self.watchdog.join(2)
        stuck = [w.name for w in self.writers if w.is_alive()]
        if stuck:
            raise TimeoutError(f"oracle writers {stuck} did not stop")
        return self.attempts()

    def __enter__(self) -> "WriterPool":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        if not self.stop_event.is_set():
            self.stop()

    # --- live views (lists are appended by the writer threads; reading a snapshot is safe) -------------
    def attempts(self) -> list[Attempt]:
        out: list[Attempt] = []
        for w in self.writers:
            out.extend(list(w.attempts))
        return out

    def first_ack(self, after: float, *, port: int | None = None, path: str | None = None) -> float | None:
        best = None
        for w in self.writers:
            if path is not None and w.path != path:
                continue
            for a in reversed(list(w.attempts)):
                if a.done <= after:
                    break
                if a.outcome == ACK and (port is None or a.server_port == port):
                    best = a.done if best is None or a.done < best else best
        return best

    def wait_ack(self, after: float, timeout: float, *, port: int | None = None, path: str | None = None,
                 settle: Callable[[], bool] | None = None) -> float | None:
        """Wait (bounded) for an acknowledgement after `after` (on `port`, through `path`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            t = self.first_ack(after, port=port, path=path)
            if t is not None:
                return t
            time.sleep(0.01)
        return None

    def stats(self) -> dict[str, Any]:
        """Per-path counts and the errors clients saw (first lines; no DSN, no secret)."""
        out: dict[str, Any] = {}
        for w in self.writers:
            p = out.setdefault(w.path, {"writers": 0, "acknowledged": 0, "failed": 0, "unknown": 0,
                                        "connect_errors": 0, "errors": {}, "sqlstates": {}})
            p["writers"] += 1
            p["connect_errors"] += w.connect_errors
            for a in list(w.attempts):
                p[a.outcome] += 1
            for k, n in w.errors.items():
                p["errors"][k] = p["errors"].get(k, 0) + n
            for k, n in w.sqlstates.items():
                p["sqlstates"][k] = p["sqlstates"].get(k, 0) + n
            if w.last_connect_error:
                p["last_connect_error"] = w.last_connect_error
        return out


def write_sequence(dsn: str, writer: int, n: int, *, deadline_s: float = 5.0, conninfo: str | None = None) -> list[Attempt]:
    """Commit `n` ids one after the other on one connection, in this thread, with the same deadline and
    classification as the pool's writers: the planted-loss tests need an exact count."""
    from psycopg.conninfo import make_conninfo

    watchdog = Watchdog()
    watchdog.start()
    w = Writer(writer, "sequence", make_conninfo(dsn, **client_params(conninfo)), deadline_s=deadline_s,
               interval_s=0, watchdog=watchdog, stop_event=threading.Event(), connect_kw={})
    conn = w._connect()
    try:
        return [w._attempt(conn) for _ in range(n)]
    finally:
        _close(conn)
        watchdog.stop_event.set()
        watchdog.join(2)
