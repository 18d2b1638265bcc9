"""PgUser: a Locust user holding one psycopg 3 connection, timing every statement into HdrHistograms.

Imported only inside the Locust child process (never by the pytest process: gevent must not patch
it). Locust has already monkey-patched the process when a locustfile imports this module, so psycopg
(imported below, after locust) picks its gevent-cooperative wait function; `_check_gevent_wait`
refuses to run otherwise, because a blocking wait would serialise every user of a worker.

Results leave the worker as one Locust message ("pgready_result") at test stop; the master (or the
single local process) writes them to the run directory the plugin reads back. The same path works
for workers on other hosts (docs/load.md).
"""

from __future__ import annotations

import locust  # noqa: F401  (first: gevent monkey-patching happens here)

import json
import os
import random
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import gevent
from locust import User, events
from locust.exception import RescheduleTask, StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

import psycopg

from . import hdr

RESULT_MSG = "pgready_result"
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
class _Recorder:
    """Everything one process measured. Steady window = [test start + warm-up, stop]."""

    def __init__(self) -> None:
        self.reset({})

    def reset(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.t0_epoch = time.time()
        self.t0 = time.perf_counter()
        self.window_start = self.t0 + float(spec.get("warmup_s", 0))
        self.window_end: float | None = None
        self.labels: dict[str, dict[str, Any]] = {}
        self.ok = self.err = self.ok_total = self.err_total = 0
        self.per_second: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.limit = int(spec.get("max_requests_per_process", 10_000_000))
        self.users_total = int(spec.get("users", 1))
        self.rate = spec.get("rate")

    def record(self, label: str, start: float, end: float, exc: BaseException | None) -> None:
        sec = int(end - self.t0)
        steady = start >= self.window_start and (self.window_end is None or end <= self.window_end)
        if exc is None:
            self.ok_total += 1
            self.per_second[sec] = self.per_second.get(sec, 0) + 1
        else:
            self.err_total += 1
            msg = " ".join(str(exc).split())[:160] or exc.__class__.__name__
            key = f"{label}: {exc.__class__.__name__}: {msg}"
            if key in self.errors or len(self.errors) < 20:
                self.errors[key] = self.errors.get(key, 0) + 1
        if not steady:
            return
        lab = self.labels.get(label)
        if lab is None:
            lab = self.labels[label] = {"hist": hdr.new_histogram(), "ok": 0, "err": 0}
        if exc is None:
            hdr.record_us(lab["hist"], (end - start) * 1e6)  # the total is the merge of the labels
            self.ok += 1
            lab["ok"] += 1
        else:
            self.err += 1
            lab["err"] += 1

    def payload(self) -> dict[str, Any]:
        end = self.window_end or time.perf_counter()
        n = max(self.per_second) + 1 if self.per_second else 0
        return {"host": socket.gethostname(), "pid": os.getpid(), "t0_epoch": self.t0_epoch,
                "window_s": max(0.0, end - self.window_start), "ok": self.ok, "err": self.err,
                "ok_total": self.ok_total, "err_total": self.err_total,
                "hist": hdr.encode(hdr.merge_histograms(v["hist"] for v in self.labels.values())),
                "labels": {k: {"hist": hdr.encode(v["hist"]), "ok": v["ok"], "err": v["err"]}
                           for k, v in self.labels.items()},
                "per_second": [self.per_second.get(i, 0) for i in range(n)], "errors": self.errors,
                "model": "open" if self.rate else "closed"}


_rec = _Recorder()
_state: dict[str, Any] = {"results": 0, "finished": False}


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    _check_gevent_wait()
    runner = environment.runner
    if isinstance(runner, (MasterRunner, LocalRunner)):
        runner.register_message(RESULT_MSG, _write_result)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    spec = _spec(environment)
    _rec.reset(spec)
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


# ------------------------------------------------------------------------------------------------ the user
class PgUser(User):
    """One simulated client: one connection, statements timed as Locust requests of type "sql".

    Subclass it, write @task methods that call `self.sql(label, query, params)` (one timed request) or
    `with self.transaction(label) as cur: …` (several statements timed as one request). Closed model by
    default; with a rate in the spec (settings.load_rate) every user follows a fixed schedule and each
    latency is counted from the scheduled start (coordinated omission corrected).
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
        self._cur: psycopg.Cursor | None = None

    # --- lifecycle ----------------------------------------------------------------------------------
    def on_start(self) -> None:
        rate = self.spec.get("rate")
        if rate:
            self._interval = float(self.spec.get("users", 1)) / float(rate)
            self._next = time.perf_counter() + random.random() * self._interval
            gevent.sleep(max(0.0, self._next - time.perf_counter()))
        self._connect()

    def on_stop(self) -> None:
        self._cur = None
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def wait_time(self) -> float:  # type: ignore[override]
        """Open model: sleep until the next scheduled arrival. A user already behind schedule (its previous
        request overran) starts at once and the next request is timed from its scheduled start: that
        queueing is the system's. A user that sleeps is timed from when it actually starts, so the event
        loop's timer granularity (~1 ms) is not charged to the database."""
        if self._interval is None:
            return 0.0
        self._next = (self._next or time.perf_counter()) + self._interval
        delay = self._next - time.perf_counter()
        self._sched = self._next if delay <= 0 else None
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
        return now

    def _report(self, label: str, start: float, end: float, exc: BaseException | None) -> None:
        _rec.record(label, start, end, exc)
        self.environment.events.request.fire(request_type="sql", name=label, response_time=(end - start) * 1000.0,
                                             response_length=0, exception=exc, context={})
        if _rec.ok_total + _rec.err_total >= _rec.limit:
            raise StopUser()

    def sql(self, label: str, query: Any, params: Any = None, *, fetch: bool = True) -> list[Any] | None:
        """Run one statement as one timed request. A failure is reported under the same name and ends the
        task (RescheduleTask), like an application that gives up on an error."""
        if self.conn is None or self.conn.closed:
            if not self._connect():
                raise RescheduleTask()
        cur = self._cur
        if cur is None or cur.closed:
            cur = self._cur = self.conn.cursor()  # type: ignore[union-attr]  (one cursor per user: cheaper)
        start = self._started()
        try:
            cur.execute(query, params)
            rows = cur.fetchall() if fetch and cur.description is not None else None
        except psycopg.Error as e:
            self._report(label, start, time.perf_counter(), e)
            self._recover()
            raise RescheduleTask() from None
        self._report(label, start, time.perf_counter(), None)
        return rows

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
