"""Run Locust headless in a child process group and read its measurements back.

Why out of process: Locust monkey-patches the interpreter with gevent, which must never happen to the
pytest process. The child gets the DSN through a 0600 file named in its environment (never argv: `ps`
shows argv to everyone), runs for warm-up + duration, and the master writes one JSON result per worker
into a private (0700) sandbox run dir. Every run is bounded: Locust's own stop, Locust's -t as a second net,
and a hard deadline after which the whole process group is killed. The group is killed on every exit path
(return, exception, KeyboardInterrupt), then whatever still works in the run dir (the forked workers of
--processes lead sessions of their own: own_session.py), so no load process outlives the run; if this
process dies without cleaning up (SIGKILL), the next run's reaper kills the Locust processes still in the
run dir and removes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..cluster.sandbox import free_port, new_run_dir, remove_dir
from . import hdr, own_session
from .locustfiles import LoadError, check_locustfile

FATAL_PREFIX = "PGREADY-FATAL:"  # same as user.FATAL_PREFIX (user.py must not be imported here)
PROTOCOLS = ("prepared", "extended", "simple")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class LoadSpec:
    locustfile: Path
    users: int = 8
    duration_s: float = 20.0
    warmup_s: float = 3.0
    rate: float | None = None  # open model: arrivals per second over all users; None: closed model
    processes: int = 1  # local Locust processes (--processes); 1: a single process
    protocol: str = "prepared"
    max_requests: int = 10_000_000
    spawn_rate: float | None = None  # users started per second (default: all at once)
    workers: int = 0  # >0: explicit master + this many local --worker processes (instead of --processes)
    remote_workers: int = 0  # workers on other hosts the master waits for (docs/load.md)
    master_bind_host: str = "127.0.0.1"
    master_port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # handed to the locustfile as spec[...]
    user_classes: list[str] = field(default_factory=list)
    connect_timeout: int = 10
    startup_timeout: float = 60.0  # seconds allowed for Locust to import, fork and connect the workers

    def validate(self) -> None:
        for name, value, ok, fix in (
                ("users", self.users, self.users >= 1, "at least 1"),
                ("duration_s", self.duration_s, self.duration_s > 0, "above 0"),
                ("warmup_s", self.warmup_s, self.warmup_s >= 0, "0 or more"),
                ("processes", self.processes, self.processes >= 1, "at least 1"),
                ("max_requests", self.max_requests, self.max_requests >= 1, "at least 1"),
                ("rate", self.rate, self.rate is None or self.rate > 0, "above 0 (or unset for the closed model)")):
            if not ok:
                raise LoadError(f"{name} = {value!r} is invalid", f"use a value {fix}")
        if self.protocol not in PROTOCOLS:
            raise LoadError(f"protocol {self.protocol!r} is unknown", f"use one of {', '.join(PROTOCOLS)}")
        check_locustfile(self.locustfile)

    @property
    def total_workers(self) -> int:
        if self.workers or self.remote_workers:
            return self.workers + self.remote_workers
        return self.processes if self.processes > 1 else 1

    def child_spec(self) -> dict[str, Any]:
        """What the Locust processes are told (JSON on their command line: nothing secret in it)."""
        return {"users": self.users, "duration_s": self.duration_s, "warmup_s": self.warmup_s, "rate": self.rate,
                "protocol": self.protocol, "connect_timeout": self.connect_timeout,
                "max_requests_per_process": max(1, self.max_requests // max(1, self.total_workers)), **self.extra}


@dataclass
class LoadResult:
    model: str
    users: int
    rate: float | None
    workers: int
    ok: int  # successful requests in the steady window
    err: int
    window_s: float
    throughput_rps: float
    hist: Any  # hdrh HdrHistogram (µs), steady window, successes only
    labels: dict[str, dict[str, Any]]
    per_second: list[int]  # successful requests per second since start, warm-up included
    errors: dict[str, int]
    ok_total: int
    err_total: int
    wall_s: float
    window_epoch: tuple[float, float] | None = None  # the steady window in epoch seconds (first start, last end)
    start_lag_ms: dict[str, float] | None = None  # open model: how late on-time arrivals went on the wire

    @property
    def error_rate(self) -> float:
        n = self.ok + self.err
        return self.err / n if n else 0.0

    @property
    def latency_ms(self) -> dict[str, float]:
        return hdr.summary_ms(self.hist)

    def histogram_us(self) -> list[list[int]]:
        return hdr.buckets(self.hist)

    def evidence(self) -> dict[str, Any]:
        top = sorted(self.errors.items(), key=lambda kv: -kv[1])[:5]
        return {"model": self.model, "users": self.users, "rate": self.rate, "workers": self.workers,
                "steady_window_s": round(self.window_s, 2), "requests": self.ok, "errors": self.err,
                "requests_incl_warmup": self.ok_total, "errors_incl_warmup": self.err_total,
                "by_query": {k: {"requests": v["ok"], "errors": v["err"], "latency_ms": v["latency_ms"]}
                             for k, v in self.labels.items()},
                "error_messages": [f"{n}× {m}" for m, n in top],
                **({"harness_start_lag_ms": self.start_lag_ms} if self.start_lag_ms else {})}


def _check_target(dsn: str, allow_remote: bool, timeout: int) -> None:
    """Refuse a non-loopback target unless allowed; connect once so an unreachable target is one line."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from ..redact import redact_dsn, redact_text

    params = conninfo_to_dict(dsn)
    hosts = [h for h in str(params.get("host") or "localhost").split(",") if h]
    if not allow_remote and any(h not in LOOPBACK and not h.startswith("/") for h in hosts):
        raise LoadError(f"refusing to drive load at {','.join(hosts)}: only loopback targets are allowed here",
                        "pass --pgready-allow-destructive to load an external target")
    try:
        with psycopg.connect(dsn, connect_timeout=timeout, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        msg = redact_text(" ".join(str(e).split()))[:200]
        raise LoadError(f"cannot reach the load target {redact_dsn(dsn)} ({msg})",
                        "check that the server runs and the DSN's host, port and password") from None


def _argv(spec: LoadSpec, role: str, port: int | None) -> list[str]:
    total = spec.warmup_s + spec.duration_s
    # absolute: Locust runs in the run directory, and a relative path is one of the caller's cwd
    argv = [sys.executable, "-m", "locust", "-f", str(Path(spec.locustfile).resolve()), "--headless", "--only-summary",
            "--loglevel", "WARNING", "--pgready-spec", json.dumps(spec.child_spec(), separators=(",", ":"))]
    if role == "worker":
        return argv + ["--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    argv += ["-u", str(spec.users), "-r", str(spec.spawn_rate or spec.users),
             "-t", f"{int(total + 30)}s", "--stop-timeout", "0"]  # -t: a second net behind our own stop
    if role == "master":
        argv += ["--master", "--master-bind-host", spec.master_bind_host, "--master-bind-port", str(port),
                 "--expect-workers", str(spec.workers + spec.remote_workers),
                 "--expect-workers-max-wait", str(int(spec.startup_timeout))]
    elif spec.processes > 1:
        argv += ["--processes", str(spec.processes)]
        if port is not None:  # Locust's defaults (*:5557) would let two runs on one host take each other's workers
            argv += ["--master-bind-host", "127.0.0.1", "--master-bind-port", str(port), "--master-port", str(port)]
    return argv + list(spec.user_classes)


def _kill_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after `grace`; reap the leader."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _group_alive(proc.pid):
            proc.poll()
            time.sleep(0.05)
        if not _group_alive(proc.pid):
            break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies of the group answer signal 0: look for a live one
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pgid and stat[0] != "Z":
            return True
    return False


def _log_error(log: str) -> str | None:
    """The one line that says why Locust did not run: ours first, then Locust's own known messages."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(FATAL_PREFIX):
            return ln[len(FATAL_PREFIX):].strip()
    for ln in lines:
        if "No User class found" in ln:
            return "the locustfile defines no User class (subclass pytest_pgready.workload.user.PgUser)"
        if "unrecognized arguments: --pgready-spec" in ln:
            return ("the locustfile does not use pgready's PgUser (from pytest_pgready.workload.user import PgUser), "
                    "so it defines no User class pgready can drive")
    for ln in reversed(lines):
        if ln.split(":", 1)[0].endswith(("Error", "Exception")) and not ln.startswith("Traceback"):
            return ln[:300]
    return None


def run_load(spec: LoadSpec, dsn: str, *, allow_remote: bool = False,
             progress: Callable[[str], None] | None = None, progress_every: float = 5.0) -> LoadResult:
    """Run one bounded Locust load against `dsn` and return the merged measurements."""
    from ..redact import redact_text

    spec.validate()
    _check_target(dsn, allow_remote, spec.connect_timeout)
    total = spec.warmup_s + spec.duration_s
    hard_deadline = spec.startup_timeout + total + 30.0
    procs: list[subprocess.Popen] = []
    logs = []
    started = time.monotonic()
    # a sandbox run dir, not a temp dir: tagged with our pid, so if pytest dies without cleaning up (SIGKILL)
    # the next run's reaper kills the orphaned Locust processes (their cwd is in it) and removes the DSN file
    run_dir = new_run_dir(private=True)
    try:
        dsn_file = run_dir / "dsn"
        fd = os.open(dsn_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(dsn)
        env = {k: v for k, v in os.environ.items() if k not in ("PGREADY_DSN", "PYTEST_ADDOPTS")}
        env.update({"PGREADY_LOAD_DIR": str(run_dir), "PGREADY_DSN_FILE": str(dsn_file), "PYTHONUNBUFFERED": "1",
                    own_session.ENV: "1",
                    "PYTHONPATH": os.pathsep.join(p for p in (str(_package_root()), env.get("PYTHONPATH", "")) if p)})
        try:
            port = None
            if spec.workers or spec.remote_workers:
                port = spec.master_port or free_port()
                roles = ["master"] + ["worker"] * spec.workers
            else:
                if spec.processes > 1:  # --processes: a master and forked workers talking over a port of ours
                    port = free_port()
                roles = ["standalone"]
            for i, role in enumerate(roles):
                log = open(run_dir / f"locust-{i}.log", "wb")
                logs.append(log)
                procs.append(subprocess.Popen(_argv(spec, role, port), stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL, cwd=str(run_dir), env=env,
                                              start_new_session=True))
            leader = procs[0]
            next_progress = time.monotonic() + progress_every
            while leader.poll() is None:
                now = time.monotonic()
                if now - started > hard_deadline:
                    raise LoadError(f"the load run did not finish within {hard_deadline:.0f}s and was killed",
                                    "check the locustfile for tasks that never return")
                if any(p.poll() not in (None, 0) for p in procs[1:]):
                    break  # a worker died: stop now and report it
                if progress is not None and now >= next_progress:
                    progress(_progress_line(run_dir, now - started, total))
                    next_progress = now + progress_every
                time.sleep(0.2)
        finally:
            for p in procs:
                _kill_group(p)
            for log in logs:
                log.close()
        text = "\n".join((run_dir / f"locust-{i}.log").read_text(errors="replace") for i in range(len(procs)))
        done = _read_json(run_dir / "done.json")
        if done is None:
            why = _log_error(text) or f"Locust exited with status {procs[0].returncode} before the run ended"
            raise LoadError(redact_text(why), "see docs/load.md (writing a locustfile)")
        results = [_read_json(p) for p in sorted(run_dir.glob("result-*.json"))]
        results = [r for r in results if r]
        expected = done.get("workers") or 1
        if len(results) < expected or not results:
            raise LoadError(f"{expected - len(results)} of {expected} load workers sent no result",
                            "a worker crashed or lost its master: see its log")
        return merge_results(results, spec, time.monotonic() - started)
    finally:
        remove_dir(run_dir)


def _package_root() -> Path:
    """So `import pytest_pgready` works in the child even from a checkout that is not installed."""
    return Path(__file__).resolve().parents[2]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _progress_line(run_dir: Path, elapsed: float, total: float) -> str:
    p = _read_json(run_dir / "progress.json") or {}
    return (f"pgready load: {elapsed:4.0f}s / ~{total:.0f}s, {p.get('users', 0)} users, "
            f"{p.get('requests', 0)} requests, {p.get('failures', 0)} errors")


def merge_results(results: list[dict[str, Any]], spec: LoadSpec, wall_s: float) -> LoadResult:
    """Add up what every worker measured: histograms bucket by bucket, rates per worker's own window."""
    hist = hdr.merge(r["hist"] for r in results)
    labels: dict[str, dict[str, Any]] = {}
    for r in results:
        for name, lab in r.get("labels", {}).items():
            agg = labels.setdefault(name, {"hists": [], "ok": 0, "err": 0})
            agg["hists"].append(lab["hist"])
            agg["ok"] += lab["ok"]
            agg["err"] += lab["err"]
    label_out = {k: {"ok": v["ok"], "err": v["err"], "latency_ms": hdr.summary_ms(hdr.merge(v["hists"]))}
                 for k, v in labels.items()}
    rps = sum(r["ok"] / r["window_s"] for r in results if r.get("window_s", 0) > 0)
    n = max((len(r.get("per_second", [])) for r in results), default=0)
    per_second = [sum(r["per_second"][i] for r in results if i < len(r.get("per_second", []))) for i in range(n)]
    errors: dict[str, int] = {}
    for r in results:
        for m, c in r.get("errors", {}).items():
            errors[m] = errors.get(m, 0) + c
    lags = [r["start_lag"] for r in results if r.get("start_lag")]
    starts = [r["t0_epoch"] + spec.warmup_s for r in results if "t0_epoch" in r]
    ends = [r["t0_epoch"] + spec.warmup_s + r.get("window_s", 0.0) for r in results if "t0_epoch" in r]
    return LoadResult(model=results[0].get("model", "closed"), users=spec.users, rate=spec.rate,
                      workers=len(results), ok=sum(r["ok"] for r in results), err=sum(r["err"] for r in results),
                      window_s=max(r.get("window_s", 0.0) for r in results), throughput_rps=round(rps, 2),
                      hist=hist, labels=label_out, per_second=per_second, errors=errors,
                      ok_total=sum(r["ok_total"] for r in results), err_total=sum(r["err_total"] for r in results),
                      wall_s=round(wall_s, 2), window_epoch=(min(starts), max(ends)) if starts else None,
                      start_lag_ms=hdr.summary_ms(hdr.merge(lags)) if lags else None)
