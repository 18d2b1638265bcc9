"""PgUser: a Locust user holding one psycopg 3 connection, timing every statement into HdrHistograms.

Imported only inside the Locust child process (never by the pytest process: gevent must not patch
it). Locust has already monkey-patched the process when a locustfile imports this module, so psycopg
(imported below, after locust) picks its gevent-cooperative wait function; `_check_gevent_wait`
refuses to run otherwise, because a blocking wait would serialise every user of a worker.

Results leave the worker as one Locust message ("pgready_result") at test stop; the master (or the
single local process) writes them to the run directory the plugin reads back. The same path works
for workers on other hosts (docs/load.md).

The per-request path is kept short (docs/load.md, "How far the harness goes"): psycopg waits on one
libev watcher instead of gevent's poll() emulation (and a request alone in flight waits in the kernel,
`ALONE_WAIT_S`), plain statements skip the cursor machinery (`_Statements`), and a success only
appends its latency to a list: once a second the lists go in bulk to the HdrHistograms and to Locust's
statistics (`_Recorder`). Every request is still timed and recorded, none is sampled.
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent monkey-patching happens here)

import inspect
import json
import os
import random
import re
import select
import socket
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType
from typing import Any, Iterator

import gevent
from gevent import monkey
from gevent.hub import Waiter, get_hub
from locust import User, events
from locust.exception import RescheduleTask, StopUser
from locust.user.task import DefaultTaskSet
from locust.user.task import LOCUST_STATE_RUNNING as _RUNNING
from locust.user.task import LOCUST_STATE_STOPPING as _STOPPING
from locust.user.task import LOCUST_STATE_WAITING as _WAITING
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
import locust.stats as locust_stats
from locust.stats import StatsEntry

import psycopg
import psycopg.waiting
from psycopg import pq
from psycopg.rows import tuple_row

try:  # the fast path of PgUser.sql() (see _Statements); without these it is simply not used
    from psycopg._queries import PostgresClientQuery, PostgresQuery
    from psycopg.adapt import Transformer
except ImportError:  # pragma: no cover - a psycopg that moved its internals
    PostgresQuery = PostgresClientQuery = Transformer = None  # type: ignore[assignment,misc]

from . import arrivals, hdr, own_session

own_session.install()  # before Locust forks the workers of --processes: see own_session.py

RESULT_MSG = "pgready_result"
_LOCUST_BUCKET = locust_stats.bucket_response_time  # Locust's own; a user may replace it (see _flush())
_MS_PER_S = 1000.0
FATAL_PREFIX = "PGREADY-FATAL:"


def _fatal(message: str) -> None:
    """One line the plugin turns into a clear error; then leave at once (no traceback spam)."""
    sys.stderr.write(f"{FATAL_PREFIX} {message}\n")
    sys.stderr.flush()
    os._exit(3)


def _check_gevent_wait() -> None:
    """psycopg >= 3.1.14 waits through gevent when gevent has patched `select`; verify it really does."""
    import psycopg.waiting as waiting
    from gevent import monkey

    if not monkey.is_module_patched("select"):
        _fatal("gevent has not patched this process: run the locustfile with `python -m locust`")
    ver = tuple(int(x) for x in psycopg.__version__.split(".")[:3] if x.isdigit())
    wait_c = getattr(waiting, "wait_c", None)
    if ver < (3, 1, 14) or (wait_c is not None and waiting.wait is wait_c):
        _fatal(f"psycopg {psycopg.__version__} uses a blocking wait function under gevent "
               f"({getattr(waiting.wait, '__name__', waiting.wait)}): install psycopg>=3.1.14")


# ------------------------------------------------------------------------------------------------ waiting
# Under gevent psycopg waits with `wait_poll`: gevent's emulation of select.poll() builds a poll object,
# a watcher per fd and a result list on every wait (~25 µs of CPU a query, a fifth of the harness's cost).
# `_gevent_wait` waits on one libev io watcher instead: the same cooperative wait, a few µs. It does not
# wake up every `interval` (psycopg does that to notice Ctrl-C and a socket closed by another thread;
# under gevent signals are the hub's business and a PgUser's connection belongs to one greenlet). A
# call with a real deadline (psycopg >= 3.3 `timeout=`) goes to psycopg's own function.
_psycopg_wait = psycopg.waiting.wait
_HAS_DEADLINE = "interval" in inspect.signature(_psycopg_wait).parameters  # psycopg < 3.2: timeout = interval


# A request that is the only one in flight in its process, with no other greenlet ready to run, waits in
# the kernel directly (an unpatched poll(), at most ALONE_WAIT_S) instead of through the event loop:
# nothing else of the process is waiting for an answer, so blocking costs no other request anything, and
# the round trip through gevent's hub (~40 µs on a 2-core VM, a fifth of a point lookup) stays out of
# the figure. Measured beside `pgbench -R`: p50 +30-40 % through the hub, +15-28 % waiting alone, the
# same as a bare blocking libpq loop in Python.
# A user whose arrival comes due meanwhile starts up to ALONE_WAIT_S late, like a timer that fires late;
# each late start is measured (`late_start`) and reported. Past the budget the wait becomes cooperative.
# A user whose wait never went through the hub has not let the others run: it yields before its next
# task (`_hub_waits`, see PgUser._between_tasks), or a closed-model user would keep the process to itself.
ALONE_WAIT_S = 0.001
_original_poll = monkey.get_original("select", "poll")
_POLLIN, _POLLOUT = select.POLLIN, select.POLLOUT
_POLL_MASK = {1: _POLLIN, 2: _POLLOUT, 3: _POLLIN | _POLLOUT}
_in_flight = 0  # requests of this process waiting for their answer
_hub_waits = 0  # waits that went through gevent's hub (and so let the other greenlets run)


def _alone(loop: Any) -> bool:
    """This request is the only one in flight and no greenlet is queued to run (gevent's libev loop; with
    another loop, assume there is one). Timers due meanwhile are the accepted cost (see late_start)."""
    callbacks = getattr(loop, "_callbacks", None)
    return _in_flight == 1 and callbacks is not None and not len(callbacks) and not loop.pendingcnt


def _kernel_wait(fd: int, s: int, timeout_s: float) -> int:
    """Wait for `s` (1 read, 2 write, 3 both) on `fd` in the kernel, bypassing gevent: the ready bits, or
    0 on timeout. POLLERR/HUP report as `s` (libpq finds out by reading)."""
    poller = _original_poll()
    poller.register(fd, _POLL_MASK[s])
    ready = poller.poll(timeout_s * 1000.0)
    if not ready:
        return 0
    ev = ready[0][1]
    return ((ev & ~_POLLOUT) and 1) | ((ev & _POLLOUT) and 2) or s


def _alone_until(loop: Any) -> float:
    """When this request may wait alone in the kernel, the perf_counter() deadline of its budget; else 0."""
    return time.perf_counter() + ALONE_WAIT_S if ALONE_WAIT_S > 0 and _alone(loop) else 0.0


def _wait_alone(gen: Any, s: int, fd: int, loop: Any) -> int:
    """When `_alone`, drive `gen` with blocking polls while the budget lasts; return the state still to
    wait for through the hub. StopIteration (the answer is in) propagates to the caller."""
    deadline = _alone_until(loop)
    while deadline and (left := deadline - time.perf_counter()) > 0 and (ready := _kernel_wait(fd, s, left)):
        s = gen.send(ready)
    return s


def _gevent_wait(gen: Any, fileno: int, *args: Any, **kwargs: Any) -> Any:
    if _HAS_DEADLINE and (kwargs.get("timeout") is not None or (len(args) > 1 and args[1] is not None)):
        return _psycopg_wait(gen, fileno, *args, **kwargs)
    global _in_flight, _hub_waits
    hub = get_hub()
    new_io = hub.loop.io
    _in_flight += 1
    try:
        s = _wait_alone(gen, next(gen), fileno, hub.loop)
        _hub_waits += 1
        while True:
            watcher = new_io(fileno, s)  # psycopg's Wait.R/W/RW are libev's READ/WRITE bits
            waiter = Waiter(hub)
            watcher.start(waiter.switch, pass_events=True)
            try:
                events_ = waiter.get()
            finally:
                watcher.close()
            s = gen.send(events_ & 3 or s)  # an error event: let libpq find out by reading
    except StopIteration as ex:
        return ex.value
    finally:
        _in_flight -= 1


def _install_gevent_wait() -> None:
    """Use `_gevent_wait` for every psycopg connection of this process, unless PSYCOPG_WAIT_FUNC chose one."""
    if "PSYCOPG_WAIT_FUNC" not in os.environ and psycopg.waiting.wait is _psycopg_wait:
        psycopg.waiting.wait = _gevent_wait


# ------------------------------------------------------------------------------------------------ spec / DSN
@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    parser.add_argument("--pgready-spec", type=str, default="{}", include_in_web_ui=False,
                        help="pytest-pgready run parameters (JSON, no secrets)")


def _spec(environment: Any) -> dict[str, Any]:
    raw = getattr(environment.parsed_options, "pgready_spec", None) or "{}"
    try:
        return json.loads(raw)
    except ValueError:
        _fatal("--pgready-spec is not valid JSON")
        raise


def _read_dsn() -> str:
    """The DSN comes from a 0600 file (PGREADY_DSN_FILE) or PGREADY_DSN — never from the command line."""
    path = os.environ.get("PGREADY_DSN_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            _fatal(f"cannot read PGREADY_DSN_FILE ({e.strerror})")
    dsn = os.environ.get("PGREADY_DSN")
    if not dsn:
        _fatal("no target: set PGREADY_DSN_FILE (a file of mode 0600 holding the DSN) or PGREADY_DSN")
    return dsn or ""


# ------------------------------------------------------------------------------------------------ recording
class _Label:
    """One query label: its HdrHistogram and counts (steady window), and the latencies (seconds) of the
    current second, not yet handed to the histogram and to Locust."""

    __slots__ = ("hist", "ok", "err", "steady", "other")

    def __init__(self) -> None:
        self.hist = hdr.new_histogram()
        self.ok = self.err = 0
        self.steady: list[float] = []  # inside the steady window: histogram and Locust
        self.other: list[float] = []  # warm-up, or after the stop: Locust only


class _Recorder:
    """Everything one process measured. Steady window = [test start + warm-up, stop].

    Every request is recorded here: a success appends its latency to its label's list, and once per
    second (`_flush`) the lists go in bulk to the HdrHistograms (`hdr.record_seconds`) and to Locust's
    statistics, one StatsEntry per label (StatsEntry.extend, as a master merges its workers' reports).
    Counting, bucketing and Locust's per-request `request` event cost as much CPU as the query itself
    when done one request at a time. Failures are counted at once and still fire the `request` event one
    by one, so Locust logs each with its error.
    """

    def __init__(self) -> None:
        self.stats: Any = None
        self.reset({})

    def reset(self, spec: dict[str, Any], stats: Any = None) -> None:
        self.spec = spec
        self.stats = stats
        self.t0_epoch = time.time()
        self.t0 = time.perf_counter()
        self.window_start = self.t0 + float(spec.get("warmup_s", 0))
        self.window_end: float | None = None
        self.labels: dict[str, _Label] = {}
        self.start_lag = hdr.new_histogram()  # open model: scheduled arrival -> request on the wire (µs)
        self.ok = self.err = self.ok_total = self.err_total = 0
        self.per_second: dict[int, int] = {}
        self.sec = 0  # the current second since t0, and when it ends (perf_counter)
        self.sec_end = self.t0 + 1
        self.errors: dict[str, int] = {}
        self.limit = int(spec.get("max_requests_per_process", 10_000_000))
        self.left = self.limit  # requests this process may still make
        self.users_total = int(spec.get("users", 1))
        self.rate = spec.get("rate")

    def _label(self, label: str) -> _Label:
        lab = self.labels.get(label)
        if lab is None:
            lab = self.labels[label] = _Label()
        return lab

    def success(self, label: str, start: float, end: float) -> bool:
        """Keep one success for this second's batch; True once the process's request budget
        (max_requests) is spent."""
        if end >= self.sec_end:
            self._next_second(end)
        lab = self.labels.get(label) or self._label(label)
        if start >= self.window_start and (self.window_end is None or end <= self.window_end):
            lab.steady.append(end - start)
        else:
            lab.other.append(end - start)
        self.left -= 1
        return self.left <= 0

    def late_start(self, planned: float, now: float) -> None:
        """How late the harness put an on-time arrival on the wire (timer slack, another user's lone wait,
        the task loop, encoding): not charged to the database, so shown beside its latency."""
        if now >= self.window_start and self.window_end is None:
            hdr.record_us(self.start_lag, (now - planned) * 1e6)

    def failure(self, label: str, start: float, end: float, exc: BaseException) -> bool:
        """Count one failure and keep its message (20 distinct at most); True as for success()."""
        self.err_total += 1
        msg = " ".join(str(exc).split())[:160] or exc.__class__.__name__
        key = f"{label}: {exc.__class__.__name__}: {msg}"
        if key in self.errors or len(self.errors) < 20:
            self.errors[key] = self.errors.get(key, 0) + 1
        if start >= self.window_start and (self.window_end is None or end <= self.window_end):
            self._label(label).err += 1
            self.err += 1
        self.left -= 1
        return self.left <= 0

    def _next_second(self, now: float) -> None:
        self._flush()
        self.sec = int(now - self.t0)
        self.sec_end = self.t0 + self.sec + 1

    def _flush(self) -> None:
        """The current second's successes: counted, into the histograms, and to Locust as one StatsEntry
        per label (Locust's response-time buckets, computed in C while they are its plain rounding)."""
        stats = self.stats
        now = time.time()
        second = int(self.t0_epoch + self.sec + 0.5)
        done = 0
        for name, lab in self.labels.items():
            steady, other = lab.steady, lab.other
            if not steady and not other:
                continue
            lat = steady + other if other else steady
            n = len(lat)
            done += n
            if steady:
                hdr.record_seconds(lab.hist, steady)
                lab.ok += len(steady)
                self.ok += len(steady)
            lab.steady, lab.other = [], []
            if stats is None:
                continue
            part = StatsEntry(stats, name, "sql")
            part.num_requests = n
            part.total_response_time = sum(lat) * 1000.0
            part.min_response_time = min(lat) * 1000.0
            part.max_response_time = max_ms = max(lat) * 1000.0
            bucket = locust_stats.bucket_response_time  # a user may have replaced it
            if bucket is _LOCUST_BUCKET and max_ms < 100:  # its first branch: round(ms)
                part.response_times.update(Counter(map(round, map(_MS_PER_S.__mul__, lat))))
            else:
                part.response_times.update(Counter(bucket(x * 1000.0) for x in lat))
            part.num_reqs_per_sec[second] = n
            part.last_request_timestamp = now
            stats.get(name, "sql").extend(part)
            stats.total.extend(part)
        if done:
            self.per_second[self.sec] = self.per_second.get(self.sec, 0) + done
            self.ok_total += done

    def finish(self) -> None:
        """At the stop: the last second's batch."""
        self._flush()

    def payload(self) -> dict[str, Any]:
        end = self.window_end or time.perf_counter()
        self._flush()
        n = max(self.per_second) + 1 if self.per_second else 0
        steady = {k: v for k, v in self.labels.items() if v.ok or v.err}
        return {"host": socket.gethostname(), "pid": os.getpid(), "t0_epoch": self.t0_epoch,
                "window_s": max(0.0, end - self.window_start), "ok": self.ok, "err": self.err,
                "ok_total": self.ok_total, "err_total": self.err_total,
                "hist": hdr.encode(hdr.merge_histograms(v.hist for v in steady.values())),
                "labels": {k: {"hist": hdr.encode(v.hist), "ok": v.ok, "err": v.err} for k, v in steady.items()},
                "per_second": [self.per_second.get(i, 0) for i in range(n)], "errors": self.errors,
                "model": "open" if self.rate else "closed",
                "start_lag": hdr.encode(self.start_lag) if self.start_lag.get_total_count() else None}


_rec = _Recorder()
_state: dict[str, Any] = {"results": 0, "finished": False}


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    _check_gevent_wait()
    _install_gevent_wait()
    runner = environment.runner
    if isinstance(runner, (MasterRunner, LocalRunner)):
        runner.register_message(RESULT_MSG, _write_result)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    spec = _spec(environment)
    _rec.reset(spec, environment.stats)
    runner = environment.runner
    if isinstance(runner, (MasterRunner, LocalRunner)):
        gevent.spawn(_progress_loop, environment)
        gevent.spawn_later(float(spec.get("warmup_s", 0)) + float(spec.get("duration_s", 10)), _finish, environment)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    if _rec.window_end is None:
        _rec.window_end = time.perf_counter()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, (WorkerRunner, LocalRunner)):
        if _rec.window_end is None:
            _rec.window_end = time.perf_counter()
        _rec.finish()
        runner.send_message(RESULT_MSG, _rec.payload())


def _run_dir() -> Path | None:
    d = os.environ.get("PGREADY_LOAD_DIR")
    return Path(d) if d else None


def _write_json(name: str, data: dict[str, Any]) -> None:
    d = _run_dir()
    if d is None:
        return
    tmp = d / f".{name}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.replace(d / name)


def _write_result(environment: Any, msg: Any, **_: Any) -> None:
    _state["results"] += 1
    node = "".join(ch if ch.isalnum() else "_" for ch in str(getattr(msg, "node_id", "local")))[-48:]
    _write_json(f"result-{_state['results']:03d}-{node}.json", msg.data)


def _progress_loop(environment: Any) -> None:
    while not _state["finished"]:
        total = environment.runner.stats.total
        _write_json("progress.json", {"t": time.time(), "requests": total.num_requests,
                                      "failures": total.num_failures, "users": environment.runner.user_count})
        gevent.sleep(1.0)


def _finish(environment: Any) -> None:
    """Stop after warm-up + duration: stop() waits until every worker has stopped (and sent its result)."""
    runner = environment.runner
    workers = len(runner.clients) if isinstance(runner, MasterRunner) else 1
    runner.stop()
    _state["finished"] = True
    _write_json("done.json", {"workers": workers, "results": _state["results"], "t": time.time()})
    runner.quit()


# ------------------------------------------------------------------------------------------------ fast path
_TUPLES_OK = pq.ExecStatus.TUPLES_OK
_COMMAND_OK = pq.ExecStatus.COMMAND_OK
_EMPTY_QUERY = pq.ExecStatus.EMPTY_QUERY
_FATAL_ERROR = pq.ExecStatus.FATAL_ERROR
_IDLE = pq.TransactionStatus.IDLE
_COPY = frozenset((pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH))
_MAX_STATEMENTS = 100  # like psycopg's prepared_max: beyond it, new statements go through a cursor
_CLEARS_STATEMENTS = re.compile(rb"^(?:DISCARD ALL|DEALLOCATE ALL)\b").match


class _Hot:
    """A statement of the prepared protocol that took a tuple of positional parameters: what `PgUser.sql()`
    needs to send it again without `bind()`, with its prepared name for each parameter types it has had.
    One key of a table is several types to psycopg (an int is int2, int4, int8 or numeric by its value),
    so a point lookup over 100,000 keys alternates int2 and int4: keeping only the last would send two
    requests in five through the long path."""

    __slots__ = ("pgq", "tx", "want", "npos", "names")

    def __init__(self, pgq: Any, npos: int) -> None:
        self.pgq, self.tx, self.want, self.npos = pgq, pgq._tx, pgq._want_formats, npos
        self.names: dict[tuple[int, ...], bytes] = {}  # parameter types -> prepared name


class _Statements:
    """`PgUser.sql()` on one connection without psycopg's cursor machinery, for the plain case only.

    A cursor's execute() re-does per call what a load generator can do once per statement: a fresh
    Transformer per new query object, the prepare manager's bookkeeping, result and description objects
    (~30 µs of CPU a query, as much as libpq and the kernel together). Here each statement is converted
    once (psycopg's own PostgresQuery, so `%s`/`%(name)s` and the adapters behave the same), its
    parameters dumped by psycopg's Transformer, sent with the libpq call of the protocol and answered
    with the steps of psycopg's `execute` generator (`results()`); rows come from the same Transformer.
    The protocol on the wire is pgbench's `-M`: prepared = Parse once per statement, then
    Bind/Describe/Execute/Sync; extended = Parse/Bind/Describe/Execute/Sync with the unnamed statement
    every time; simple = one Query message with the parameters merged client-side (psycopg's ClientCursor
    quoting).

    Used only in autocommit, outside a transaction or pipeline, with tuple rows and a `str` query;
    anything else goes through a psycopg cursor, and so do new statements past `_MAX_STATEMENTS`. A
    PgUser's connection belongs to its greenlet, so the connection lock a cursor takes is not taken here.
    """

    def __init__(self, conn: psycopg.Connection, protocol: str) -> None:
        self.conn = conn
        self.pgconn = conn.pgconn
        self.protocol = protocol
        self.queries: dict[str, Any] = {}  # statement (with parameters) -> psycopg's converted query
        self.plain: dict[str, Any] = {}  # the same for statements run without parameters
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        # statement -> _Hot, for PgUser.sql()'s shortest path; emptied whenever a name may be gone. Only
        # filled when the connection keeps its state where that path reads it (psycopg's attributes)
        self.hot: dict[str, _Hot] = {}
        self.hot_ok = hasattr(conn, "_autocommit")
        self.seq = 0
        self.hub = get_hub()
        self.answered = 0.0  # perf_counter() when the last results() had its whole answer in libpq
        self.watcher: Any = None  # one libev io watcher for the connection's socket, reused for every wait
        self.fd = -1

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None

    def results(self) -> list[Any]:
        """Send what libpq holds and collect every result of the statement: psycopg's `execute` generator
        (flush, then fetch until libpq returns no more results, notifications passed to the connection's
        handler, an error that broke the connection after an error result ends the list) written out with
        libpq's calls, which costs a fifth less CPU a request than driving the generator.

        `answered` is when the answer was complete: read right after the `consume_input()` that completed it
        (libpq has read and parsed it then), before the ~20 µs of calls that hand it over and any
        notification handler, which are the client's time, not the database's.

        Waits for the socket as `_gevent_wait` does: alone in flight, in the kernel for up to ALONE_WAIT_S;
        otherwise through the hub, on this connection's own io watcher (gevent checks a new watcher's fd
        with fcntl(): one system call per query saved)."""
        pgconn = self.pgconn
        global _in_flight, _hub_waits
        results: list[Any] = []
        answered = 0.0
        deadline = -1.0  # -1: not decided yet; >0: waiting alone until then; 0: through the hub
        _in_flight += 1
        try:
            while True:
                if pgconn.flush():  # the socket took only part of the message
                    s = 3  # writable, or readable (the server may be sending: read it, or both sides block)
                elif pgconn.is_busy():
                    s = 1
                else:
                    res = pgconn.get_result()
                    if res is None:
                        break
                    results.append(res)
                    if res.status in _COPY:  # libpq makes up a result per call in COPY mode: stop here
                        break
                    continue
                ready = 0
                if deadline:
                    if deadline < 0:
                        deadline = _alone_until(self.hub.loop) if _in_flight == 1 else 0.0
                    if deadline and (left := deadline - time.perf_counter()) > 0:
                        ready = _kernel_wait(pgconn.socket, s, left)
                    if not ready:
                        deadline = 0.0
                        _hub_waits += 1
                if not ready:  # through the hub, on the connection's own watcher
                    fd = pgconn.socket
                    w = self.watcher
                    if w is None or fd != self.fd:
                        if w is not None:
                            w.close()
                        w = self.watcher = self.hub.loop.io(fd, s)
                        self.fd = fd
                    elif w.events != s:
                        w.events = s
                    waiter = Waiter(self.hub)
                    w.start(waiter.switch, pass_events=True)
                    try:
                        ready = waiter.get() & 3 or s
                    finally:
                        w.stop()
                if ready & 1:
                    try:
                        pgconn.consume_input()  # reads and parses: what came in is libpq's answer now
                        answered = time.perf_counter()
                    except psycopg.DatabaseError:
                        if any(r.status == _FATAL_ERROR for r in results):
                            break  # e.g. idle_in_transaction_session_timeout: its error result says why
                        raise
        finally:
            _in_flight -= 1
        self.answered = answered or time.perf_counter()
        while (n := pgconn.notifies()) is not None:
            if (handler := pgconn.notify_handler) is not None:
                handler(n)
        return results

    def usable(self, query: Any) -> bool:
        conn = self.conn
        return (type(query) is str and conn.autocommit and conn.row_factory is tuple_row
                and self.pgconn.transaction_status == _IDLE and self.pgconn.pipeline_status == 0)

    def bind(self, query: str, params: Any) -> tuple[Any, bytes | None] | None:
        """Convert the statement and its parameters to what goes on the wire (and Parse it once, for the
        prepared protocol): (statement, prepared name), or None for "use a cursor". Nothing of this is
        the database's time: the caller starts its clock after it, as it stops it before decoding rows."""
        queries = self.queries if params is not None else self.plain
        entry = queries.get(query)
        if entry is None:
            if len(queries) >= 4 * _MAX_STATEMENTS:
                return None
            pgq = (PostgresClientQuery if self.protocol == "simple" else PostgresQuery)(Transformer(self.conn))
            pgq.convert(query, params)
            queries[query] = (pgq, self._positional(pgq))
        else:
            pgq, npos = entry
            if params is not None:
                if type(params) is tuple and len(params) == npos:
                    # what pgq.dump() does once its checks pass (they did at convert(): same query and shape)
                    tx = pgq._tx
                    pgq.params = tx.dump_sequence(params, pgq._want_formats)
                    pgq.types = tx.types or ()
                    pgq.formats = tx.formats
                else:
                    pgq.dump(params)
        if self.protocol != "prepared":
            return pgq, None
        skey = (pgq.query, pgq.types)
        name = self.names.get(skey)
        if name is None:
            if len(self.names) >= _MAX_STATEMENTS:
                return None
            name = self._prepare(pgq, skey)
        if entry is not None and entry[1] >= 0 and type(params) is tuple and self.hot_ok:
            hot = self.hot.get(query)
            if hot is None:
                hot = self.hot[query] = _Hot(pgq, entry[1])
            hot.names[pgq.types] = name
        return pgq, name

    @staticmethod
    def _positional(pgq: Any) -> int:
        """How many `%s` placeholders a server-side-bound statement has (its tuples of parameters can skip
        pgq.dump()'s checks); -1 for named placeholders, client-side binding or an unknown psycopg."""
        parts, order = getattr(pgq, "_parts", None), getattr(pgq, "_order", ())
        if type(pgq) is not PostgresQuery or parts is None or order is not None:
            return -1
        if not hasattr(pgq, "_want_formats") or not hasattr(pgq, "_tx"):
            return -1
        return len(parts) - 1

    def run(self, bound: tuple[Any, bytes | None]) -> tuple[Any, list[Any]]:
        """Send a bound statement and wait for its results: (statement, results). The caller stops its
        clock here and decodes the rows afterwards."""
        pgq, name = bound
        pgconn = self.pgconn
        protocol = self.protocol
        if name is not None:
            pgconn.send_query_prepared(name, pgq.params, param_formats=pgq.formats)
            results = self.results()
            if results and results[0].status == _FATAL_ERROR:
                results = self.again(pgq, name, results)
        elif protocol == "extended":
            pgconn.send_query_params(pgq.query, pgq.params, param_formats=pgq.formats, param_types=pgq.types)
            results = self.results()
        else:
            pgconn.send_query(pgq.query)
            results = self.results()
        return pgq, results

    def again(self, pgq: Any, name: bytes, results: list[Any]) -> list[Any]:
        """After an error result of a prepared statement: when it only says the statement is gone or stale
        (nothing ran), prepare it again, once, and run it; the results to answer with."""
        why = self._stale(results[0])
        if why is None:
            return results
        skey = (pgq.query, pgq.types)
        if why == "changed":
            self._deallocate(name)
        self.names.pop(skey, None)
        self.hot.clear()
        name = self._prepare(pgq, skey)
        self.pgconn.send_query_prepared(name, pgq.params, param_formats=pgq.formats)
        return self.results()

    def rows(self, got: tuple[Any, list[Any]], fetch: bool) -> list[Any] | None:
        """Check the results like a cursor would (raising the same errors) and decode the first result's rows."""
        pgq, results = got
        if len(results) == 1 and (res := results[0]).status == _TUPLES_OK:  # the common case, in short
            if not fetch:
                return None
            tx = pgq._tx
            tx.set_pgresult(res)
            return tx.load_rows(0, res.ntuples, tuple)
        if not results:
            raise psycopg.InternalError("got no result from the query")
        rows = None
        for i, res in enumerate(results):
            status = res.status
            if status == _TUPLES_OK:
                if i == 0 and fetch:
                    tx = pgq._tx
                    tx.set_pgresult(res)
                    rows = tx.load_rows(0, res.ntuples, tuple)
            elif status == _COMMAND_OK:
                if self.names and (cmd := res.command_status) and _CLEARS_STATEMENTS(cmd):
                    self.names.clear()
                    self.hot.clear()
            elif status == _FATAL_ERROR:
                raise psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding)
            elif status != _EMPTY_QUERY:
                raise psycopg.ProgrammingError(f"unexpected result status {pq.ExecStatus(status).name} "
                                               "(COPY needs a psycopg cursor: use self.conn)")
        return rows

    def _prepare(self, pgq: Any, skey: tuple[bytes, tuple[int, ...]]) -> bytes:
        self.seq += 1
        name = b"_pgready_%d" % self.seq
        self.pgconn.send_prepare(name, pgq.query, param_types=pgq.types)
        for res in self.results():
            if res.status == _FATAL_ERROR:
                raise psycopg.errors.error_from_result(res, encoding=self.conn.info.encoding)
        self.names[skey] = name
        return name

    def _deallocate(self, name: bytes) -> None:
        self.pgconn.send_query(b"DEALLOCATE " + name)
        self.results()  # an error here only means it is gone already

    @staticmethod
    def _stale(res: Any) -> str | None:
        """"gone": our statement was deallocated behind our back (DEALLOCATE/DISCARD ALL run through a
        cursor); "changed": DDL changed its result type ("cached plan must not change result type").
        PostgreSQL re-plans a prepared statement after any other DDL by itself."""
        code = res.error_field(pq.DiagnosticField.SQLSTATE)
        if code == b"26000":
            return "gone"
        msg = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b""
        return "changed" if code == b"0A000" and msg.startswith(b"cached plan must not change") else None


# ------------------------------------------------------------------------------------------------ the user
class PgUser(User):
    """One simulated client: one connection, statements timed as Locust requests of type "sql".

    Subclass it, write @task methods that call `self.sql(label, query, params)` (one timed request) or
    `with self.transaction(label) as cur: …` (several statements timed as one request). Closed model by
    default; with a rate in the spec (settings.load_rate) every user follows a fixed schedule and a
    request that could not start on time is counted from its scheduled start (coordinated omission
    corrected). A `sql()` request is timed from the moment it goes to the wire (parameters encoded) until
    libpq holds its whole answer; handing it over and decoding the rows into Python objects come after the
    clock stops (docs/load.md).
    """

    abstract = True
    application_name = "pgready-load"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.conn: psycopg.Connection | None = None
        self.spec = _rec.spec or _spec(environment)
        self._interval: float | None = None
        self._next: float | None = None
        self._sched: float | None = None  # scheduled start of the current task (open model)
        self._planned: float | None = None  # the same when the user slept until it (see late_start)
        self._cur: psycopg.Cursor | None = None
        self._stmts: _Statements | None = None
        self._hub_mark = -1  # _hub_waits when the current task began (see _between_tasks)

    # --- lifecycle ----------------------------------------------------------------------------------
    def on_start(self) -> None:
        ts = getattr(self, "_taskset_instance", None)  # Locust's DefaultTaskSet, created just before on_start
        if ts is not None and "_sleep" not in vars(ts):
            self._shorten_task_loop(ts)
        rate = self.spec.get("rate")
        if rate:
            self._interval = float(self.spec.get("users", 1)) / float(rate)
            self._next = time.perf_counter() + random.random() * self._interval
            gevent.sleep(max(0.0, self._next - time.perf_counter()))
        self._connect()

    def on_stop(self) -> None:
        self._cur = None
        if self._stmts is not None:
            self._stmts.close()
            self._stmts = None
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def _shorten_task_loop(self, ts: Any) -> None:
        """Locust's task loop, minus what a PgUser makes constant (each step costs a few Python calls a
        request, a tenth of the client's CPU together): its wait_time is always its own method; a user
        with a single task gets it without a random choice among one; a task that is a plain function is
        called without the TaskSet test (`hasattr(task, "tasks")` raises and catches an AttributeError
        for every function); the wait between tasks sets the same states (a user stopped while waiting is
        killed at once, one stopped in a task finishes it) with the user at hand instead of through the
        `TaskSet.user` property, and sleeps through `_between_tasks` (written out for PgUser's own closed
        model, which waits 0 s). A single task goes back in the queue once it has run, unless the task
        queued others: Locust's loop would take it next anyway (two calls saved), and the order of what a
        task schedules is kept. A nested TaskSet, a TaskSet subclass as the root or a Locust without these
        internals keeps Locust's own steps."""
        ts._sleep = between = self._between_tasks
        queue = getattr(ts, "_task_queue", None)
        if type(ts) is not DefaultTaskSet or queue is None or self._state != _RUNNING:
            return
        ts.wait_time = wait_time = self.wait_time
        own_wait = type(self).wait_time is PgUser.wait_time
        tasks = self.tasks
        only: Any = None
        if type(tasks) is list and len(tasks) == 1 and not isinstance(tasks[0], type):
            only = tasks[0]
            ts.get_next_task = lambda: only
        execute_task, user = ts.execute_task, self

        def execute_next_task() -> None:
            task = queue.popleft()
            if type(task) is FunctionType:
                task(user)
            else:
                execute_task(task)
            if only is not None and not queue:
                queue.append(only)

        def wait() -> None:
            if user._state == _STOPPING:
                raise StopUser()
            user._state = _WAITING
            if own_wait and user._interval is None:  # the closed model: _between_tasks(0)
                if _hub_waits == user._hub_mark:
                    gevent.sleep(0)
                user._hub_mark = _hub_waits
            else:
                between(wait_time())
            if user._state == _STOPPING:
                raise StopUser()
            user._state = _RUNNING

        ts.execute_next_task = execute_next_task
        ts.wait = wait

    def _between_tasks(self, seconds: float) -> None:
        """Locust sleeps 0 s between two tasks so the other greenlets get to run; a task that waited for an
        answer through the hub has just let them run, so that extra round trip through the hub is skipped.
        A task that did not (nothing sent, a failure, only waits alone) still yields, and any real wait
        is slept: until the next arrival to the microsecond in the open model (arrivals.py)."""
        if not (seconds <= 0 and _hub_waits != self._hub_mark):
            if seconds > 0 and (due := self._planned) is not None:
                arrivals.sleep_until(due)
            else:
                gevent.sleep(seconds)
        self._hub_mark = _hub_waits

    def wait_time(self) -> float:  # type: ignore[override]
        """Open model: sleep until the next scheduled arrival. A user already behind schedule (its previous
        request overran) starts at once and the next request is timed from its scheduled start: that
        queueing is the system's. A user that sleeps is timed from when it actually starts, so its wake-up lag
        (tens of µs with arrivals.py's timerfd, up to 1 ms with gevent's timers) is not charged to the
        database; it is measured and reported as the start lag."""
        if self._interval is None:
            return 0.0
        self._next = (self._next or time.perf_counter()) + self._interval
        delay = self._next - time.perf_counter()
        self._sched = self._next if delay <= 0 else None
        self._planned = self._next if delay > 0 else None
        return max(0.0, delay)

    def _connect(self) -> bool:
        start = time.perf_counter()
        protocol = self.spec.get("protocol", "prepared")
        kw: dict[str, Any] = {"autocommit": True, "application_name": self.application_name,
                              "connect_timeout": int(self.spec.get("connect_timeout", 10))}
        if protocol == "prepared":
            kw["prepare_threshold"] = 0
        elif protocol == "extended":
            kw["prepare_threshold"] = None
        else:
            kw["cursor_factory"] = psycopg.ClientCursor
            kw["prepare_threshold"] = None
        try:
            self.conn = psycopg.connect(_read_dsn(), **kw)
            self._cur = None
            if self._stmts is not None:
                self._stmts.close()
            self._stmts = _Statements(self.conn, protocol) if PostgresQuery is not None else None
            return True
        except psycopg.Error as e:
            self.conn = None
            self._report("connect", start, time.perf_counter(), e)
            gevent.sleep(0.2)  # a dead target: errors at a bounded pace, not a spin
            return False

    # --- timing -------------------------------------------------------------------------------------
    def _started(self) -> float:
        now = time.perf_counter()
        if self._sched is not None:  # the first request of an open-model arrival carries its queueing delay
            s, self._sched = min(self._sched, now), None
            return s
        if self._planned is not None:  # recorded before the clock starts, not inside it
            _rec.late_start(self._planned, now)
            self._planned = None
            return time.perf_counter()
        return now

    def _report(self, label: str, start: float, end: float, exc: BaseException | None) -> None:
        if exc is None:
            spent = _rec.success(label, start, end)
        else:
            spent = _rec.failure(label, start, end, exc)
            self.environment.events.request.fire(request_type="sql", name=label,
                                                 response_time=(end - start) * 1000.0, response_length=0,
                                                 exception=exc, context={})
        if spent:
            raise StopUser()

    def sql(self, label: str, query: Any, params: Any = None, *, fetch: bool = True) -> list[Any] | None:
        """Run one statement as one timed request. A failure is reported under the same name and ends the
        task (RescheduleTask), like an application that gives up on an error."""
        stmts = self._stmts
        if (stmts is not None and type(params) is tuple and (hot := stmts.hot.get(query)) is not None
                and len(params) == hot.npos and (conn := stmts.conn)._autocommit
                and conn.row_factory is tuple_row and (pg := stmts.pgconn).transaction_status == _IDLE
                and not pg.pipeline_status):
            # The shortest path: a statement prepared for these parameter types, in plain autocommit. The
            # steps of bind(), run() and rows() for that case, written out: a load generator spends its
            # CPU per request on every call it makes, and that CPU is taken from the database measured.
            tx = hot.tx
            start = None
            try:
                values = tx.dump_sequence(params, hot.want)
                if (name := hot.names.get(types := tx.types or ())) is not None:
                    start = time.perf_counter() if self._sched is None and self._planned is None else self._started()
                    pg.send_query_prepared(name, values, param_formats=tx.formats)
                    results = stmts.results()
                    end = stmts.answered
                    if len(results) == 1 and (res := results[0]).status == _TUPLES_OK:
                        if fetch:
                            tx.set_pgresult(res)
                            rows = tx.load_rows(0, res.ntuples, tuple)
                        else:
                            rows = None
                    else:  # an error, several results: what run() and rows() do
                        pgq = hot.pgq
                        pgq.params, pgq.types, pgq.formats = values, types, tx.formats
                        if results and results[0].status == _FATAL_ERROR:
                            results = stmts.again(pgq, name, results)
                            end = stmts.answered
                        rows = stmts.rows((pgq, results), fetch)
                    if _rec.success(label, start, end):
                        raise StopUser()
                    return rows
            except psycopg.Error as e:
                raise self._gave_up(label, start, e) from None
            # new parameter types (an int past int4 ...): bind() prepares the statement for them
        fast = stmts is not None and stmts.usable(query)  # (only an open connection can be usable)
        if not fast:
            conn = self.conn
            if conn is None or conn.closed:
                if not self._connect():
                    raise RescheduleTask()
                stmts = self._stmts
                fast = stmts is not None and stmts.usable(query)
        start = None
        try:
            bound = stmts.bind(query, params) if fast else None  # type: ignore[union-attr]
            # parameters are encoded: from here on it is the database's time
            start = time.perf_counter() if self._sched is None and self._planned is None else self._started()
            if bound is not None:
                got = stmts.run(bound)  # type: ignore[union-attr]
                end = stmts.answered  # type: ignore[union-attr]  (decoding the rows is the application's time)
                rows = stmts.rows(got, fetch)  # type: ignore[union-attr]
            else:
                cur = self._cur
                if cur is None or cur.closed:
                    cur = self._cur = self.conn.cursor()  # type: ignore[union-attr]  (one cursor per user)
                cur.execute(query, params)
                end = time.perf_counter()
                res = cur.pgresult
                rows = cur.fetchall() if fetch and res is not None and res.status == _TUPLES_OK else None
        except psycopg.Error as e:
            raise self._gave_up(label, start, e) from None
        if _rec.success(label, start, end):
            raise StopUser()
        return rows

    def _gave_up(self, label: str, start: float | None, exc: psycopg.Error) -> RescheduleTask:
        """A failed sql() request: reported under its label (timed from its start, or from now when it
        failed before the clock started), the connection dropped if broken; the exception that ends the task."""
        self._report(label, self._started() if start is None else start, time.perf_counter(), exc)
        self._recover()
        return RescheduleTask()

    @contextmanager
    def transaction(self, label: str) -> Iterator[psycopg.Cursor]:
        """Several statements timed as one request and committed together. A failure rolls back, is
        reported under the same name and ends the task; `raise Rollback()` inside is a successful no-op."""
        if self.conn is None or self.conn.closed:
            if not self._connect():
                raise RescheduleTask()
        start = self._started()
        try:
            with self.conn.transaction():  # type: ignore[union-attr]
                yield self.conn.cursor()  # type: ignore[union-attr]
        except psycopg.Error as e:
            self._report(label, start, time.perf_counter(), e)
            self._recover()
            raise RescheduleTask() from None
        self._report(label, start, time.perf_counter(), None)

    def _recover(self) -> None:
        if self.conn is not None and (self.conn.broken or self.conn.closed):
            self.on_stop()


# Raise inside `transaction()` to roll back a business no-op (e.g. sold out): counted as a success.
Rollback = psycopg.Rollback
