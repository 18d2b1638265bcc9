"""SIGINT/SIGTERM mid-run stop every child and remove the sandbox within 10 s; after a SIGKILL the next run reaps.

Each test runs `pytest --pgready` in a subprocess, as a user would, and signals it (that process only, like
`kill`, so its children get no signal of their own) at a moment it detects from the outside: while the
cluster is provisioned, during a user check, in the middle of a failover drill, while Locust drives load.
Then: pytest has exited within 10 s, no process it started is left (postgres, pgbouncer, toxiproxy, locust,
pg_ctl …), and every sandbox run dir it owned is gone. The drill's moment comes from a tiny probe plugin
(`-p pgready_probe`) that only prints when the drill injects its fault; everything else is seen in /proc
and the sandbox (`owner.json` names the pytest process owning a run dir).

One PostgreSQL major (the lowest of PGREADY_TEST_MAJORS / the installed ones): teardown does not depend on
the server version, and every case provisions a full cluster (primary, replica, PgBouncer, Toxiproxy).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from pytest_pgready.cluster import sandbox

pytestmark = pytest.mark.integration

TEARDOWN_S = 10.0
SIGNALS = pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])

SLOW_CHECK = """
import time, pytest

@pytest.mark.pgready(id="ACME100", severity="low", category="schema")
def test_slow(pgready_cluster):
    print("READY", pgready_cluster.workdir, flush=True)
    time.sleep(120)
"""

QUICK_CHECK = """
import pytest

@pytest.mark.pgready(id="ACME101", severity="low", category="schema")
def test_quick(pgready_cluster):
    with pgready_cluster.primary.connect() as c:
        c.execute("SELECT 1")
"""

# Loaded with -p: says when the failover drill has killed its primary (the drill is then mid-way: a standby
# is being promoted while the writers reconnect) and how the drill ended. Changes nothing else.
PROBE = r'''
import os
import pytest


def _say(text):
    os.write(1, f"PROBE {text}\n".encode())


def pytest_configure(config):
    from pytest_pgready import faults
    from pytest_pgready.drills import failover_crash

    kill, drill = faults.kill_postmaster, failover_crash.crash_drill

    def kill_postmaster(node):
        t = kill(node)
        _say(f"FAULT {node.name}")
        return t

    def crash_drill(*a, **kw):
        _say("DRILL started")
        try:
            out = drill(*a, **kw)
        except BaseException as e:
            _say(f"DRILL interrupted {type(e).__name__}")
            raise
        _say("DRILL finished")
        return out

    faults.kill_postmaster, failover_crash.crash_drill = kill_postmaster, crash_drill
'''


def _bins() -> Any:
    from conftest import lowest_major

    return lowest_major()


def _wait(pred: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Run:
    """`pytest --pgready …` in a subprocess; its output is read by a thread so no wait can hang on a pipe."""

    def __init__(self, tmp_path: Path, *args: str, config: str | None = None, probe: bool = False) -> None:
        self.tmp_path = tmp_path
        argv = [sys.executable, "-m", "pytest", "--pgready", "-p", "no:cacheprovider", "-s", "-q",
                "--pgready-pg-bin", str(_bins().bindir), "--pgready-report-dir", str(tmp_path / "report")]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
        if probe:
            (tmp_path / "pgready_probe.py").write_text(PROBE)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path), env.get("PYTHONPATH", "")) if p)
            argv += ["-p", "pgready_probe"]
        if config is not None:
            (tmp_path / "pgready.toml").write_text(config)
            argv += ["--pgready-config", str(tmp_path / "pgready.toml")]
        # a shell that starts the suite in the background without job control ignores SIGINT in every
        # child (an inherited SIG_IGN, which Python keeps): give the run under test the default back
        self.proc = subprocess.Popen(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True, cwd=tmp_path, env=env,
                                     preexec_fn=_default_sigint)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def line_with(self, text: str) -> str | None:
        return next((ln for ln in list(self.lines) if text in ln), None)

    def run_dirs(self) -> list[Path]:
        """The sandbox run dirs this pytest owns right now (clusters and load runs)."""
        out = []
        for d in (sandbox.base_dir() / "run").iterdir():
            try:
                if json.loads((d / "owner.json").read_text())["pid"] == self.proc.pid:
                    out.append(d)
            except (OSError, ValueError, KeyError):
                continue
        return out

    def wait_for(self, pred: Callable[[], Any], what: str, timeout: float = 120) -> Any:
        v = _wait(lambda: pred() or self.proc.poll() is not None, timeout)
        if self.proc.poll() is not None or not v:
            self.kill()
            raise AssertionError(f"never saw {what} (exit {self.proc.returncode}); output:\n{self.output[-3000:]}")
        return v

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def interrupt(self, sig: int) -> tuple[float, list[Path], dict[int, str]]:
        """Signal pytest; what it owned at that moment; then how long it took to exit."""
        def owned() -> tuple[list[Path], dict[int, str]] | None:
            dirs = self.run_dirs()
            procs = _snapshot(dirs)
            return (dirs, procs) if procs else None

        dirs, procs = self.wait_for(owned, "a process under a run dir when the signal is due", timeout=30)
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(TEARDOWN_S + 20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"pytest did not stop within {TEARDOWN_S + 20:.0f}s of {signal.Signals(sig).name}")
        elapsed = time.monotonic() - t0
        self._reader.join(10)
        print(f"teardown after {signal.Signals(sig).name}: {elapsed:.2f}s, {len(procs)} processes, {len(dirs)} dirs")
        return elapsed, dirs, procs


def _snapshot(dirs: list[Path]) -> dict[int, str]:
    """pid → 'start time + command line' of every process under the dirs (start time: a pid can be reused)."""
    out = {}
    for d in dirs:
        for pid in sandbox.processes_under(d):
            start = sandbox._proc_start_time(pid)
            if start is not None:
                out[pid] = f"{start} {_cmdline(pid)}"
    return out


def _alive(pid: int, start: str) -> bool:
    """The same process (pid and start time) still runs (a zombie has ended: it only awaits its parent)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[19] == start and fields[0] != "Z"


def _survivors(procs: dict[int, str]) -> list[str]:
    return [cmd for pid, cmd in procs.items() if _alive(pid, cmd.split(" ", 1)[0])]


def _assert_torn_down(run: Run, elapsed: float, dirs: list[Path], procs: dict[int, str]) -> None:
    assert elapsed < TEARDOWN_S, f"teardown took {elapsed:.1f}s; output:\n{run.output[-3000:]}"
    assert _survivors(procs) == []
    for d in dirs:
        assert not d.exists(), f"{d} was left behind"
        assert sandbox.processes_under(d) == []
    assert run.run_dirs() == [], "a run dir appeared after the signal and was left behind"


def _has(procs: dict[int, str], *names: str) -> bool:
    return all(any(name in cmd for cmd in procs.values()) for name in names)


# ------------------------------------------------------------------------------------------------ a check
@SIGNALS
def test_signal_during_a_check_tears_everything_down(sig: int, tmp_path: Path):
    (tmp_path / "test_slow.py").write_text(SLOW_CHECK)
    run = Run(tmp_path, "--pgready-suite", "schema", str(tmp_path))
    line = run.wait_for(lambda: run.line_with("READY"), "the check start")
    workdir = Path(line.split("READY", 1)[1].strip())
    elapsed, dirs, procs = run.interrupt(sig)
    assert workdir in dirs and _has(procs, "postgres", "pgbouncer", "toxiproxy")
    _assert_torn_down(run, elapsed, dirs, procs)


# ------------------------------------------------------------------------------------------------ provisioning
@SIGNALS
def test_signal_during_provisioning_tears_everything_down(sig: int, tmp_path: Path):
    """The first process of the session cluster runs (the primary starts; the replica, PgBouncer and Toxiproxy
    are still to come): the signal lands in the middle of provision_local."""
    (tmp_path / "test_slow.py").write_text(SLOW_CHECK)
    run = Run(tmp_path, "--pgready-suite", "schema", str(tmp_path))
    run.wait_for(lambda: any(sandbox.processes_under(d) for d in run.run_dirs()), "a process in a new run dir",
                 timeout=120)
    elapsed, dirs, procs = run.interrupt(sig)
    assert "READY" not in run.output, "the cluster was ready before the signal: this tested nothing new"
    _assert_torn_down(run, elapsed, dirs, procs)


# ------------------------------------------------------------------------------------------------ a drill
@SIGNALS
def test_signal_during_a_failover_drill_tears_everything_down(sig: int, tmp_path: Path):
    """FO001 has killed its primary: the standby is being promoted while the oracle's writer threads retry."""
    run = Run(tmp_path, "--pgready-suite", "failover", "-k", "test_fo001", probe=True,
              config="failover_trials = 1\n")
    run.wait_for(lambda: run.line_with("PROBE FAULT"), "the drill's fault", timeout=150)
    elapsed, dirs, procs = run.interrupt(sig)
    assert "PROBE DRILL interrupted KeyboardInterrupt" in run.output, (
        f"the signal did not land inside the drill; output:\n{run.output[-3000:]}")
    assert _has(procs, "postgres")
    _assert_torn_down(run, elapsed, dirs, procs)


# ------------------------------------------------------------------------------------------------ a load run
def _load_dir(run: Run) -> Path | None:
    """A load run in progress: Locust's master has written progress.json with users running."""
    for d in run.run_dirs():
        try:
            if json.loads((d / "progress.json").read_text()).get("users", 0) > 0:
                return d
        except (OSError, ValueError):
            continue
    return None


PERF_CONFIG = "calibrate_seconds = 120\nload_users = 2\n"  # a long calibration run: the signal lands in it


@SIGNALS
def test_signal_during_a_load_run_stops_locust_and_removes_its_dir(sig: int, tmp_path: Path):
    run = Run(tmp_path, "--pgready-suite", "performance", "-k", "test_perf006", config=PERF_CONFIG)
    load_dir = run.wait_for(lambda: _load_dir(run), "a running load", timeout=150)
    assert (load_dir / "dsn").exists() and (load_dir.stat().st_mode & 0o777) == 0o700
    elapsed, dirs, procs = run.interrupt(sig)
    locust = {pid: cmd for pid, cmd in procs.items() if "locust" in cmd}
    assert load_dir in dirs and len(locust) >= 2, procs  # master + forked workers (--processes)
    assert _has(procs, "postgres", "pgbouncer", "toxiproxy")
    _assert_torn_down(run, elapsed, dirs, procs)


# ------------------------------------------------------------------------------------------------ SIGKILL
@pytest.mark.parametrize("moment", ["check", "load"])
def test_sigkill_leftovers_are_reaped_by_the_next_run(moment: str, tmp_path: Path):
    """SIGKILL runs no teardown: the cluster (and a load run's Locust processes and DSN file) stay behind,
    until the next `pytest --pgready` reaps them when it creates its own run dir."""
    first = tmp_path / "first"
    first.mkdir()
    if moment == "check":
        (first / "test_slow.py").write_text(SLOW_CHECK)
        run = Run(first, "--pgready-suite", "schema", str(first))
        run.wait_for(lambda: run.line_with("READY"), "the check start")
    else:
        run = Run(first, "--pgready-suite", "performance", "-k", "test_perf006", config=PERF_CONFIG)
        run.wait_for(lambda: _load_dir(run), "a running load", timeout=150)
    dirs = run.run_dirs()
    procs = _snapshot(dirs)
    run.kill()
    left = {pid: cmd for pid, cmd in procs.items() if cmd in _survivors(procs)}
    assert _has(left, "postgres", "pgbouncer", "toxiproxy"), f"the SIGKILL should leave the cluster: {procs}"
    assert all(d.exists() for d in dirs)
    if moment == "load":
        assert _has(left, "locust") and any((d / "dsn").exists() for d in dirs)

    second = tmp_path / "second"
    second.mkdir()
    (second / "test_quick.py").write_text(QUICK_CHECK)
    nxt = Run(second, "--pgready-suite", "schema", str(second))
    try:
        nxt.proc.wait(180)
    except subprocess.TimeoutExpired:
        nxt.kill()
        raise AssertionError("the next run did not finish within 180 s")
    nxt._reader.join(10)
    assert nxt.proc.returncode == 0, nxt.output[-3000:]
    assert _survivors(procs) == []
    assert [d for d in dirs if d.exists()] == []
