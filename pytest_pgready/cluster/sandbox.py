"""Where clusters live, free ports without races, and the reaper for what a crashed run left behind."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import time
from pathlib import Path

from .osuser import service_user

_BASE = Path(os.environ.get("PGREADY_SANDBOX", "/tmp/pytest-pgready"))


def base_dir() -> Path:
    d = _BASE if os.geteuid() == 0 else Path(f"{_BASE}-{os.getuid()}")
    d.mkdir(mode=0o755, exist_ok=True)
    (d / "run").mkdir(mode=0o755, exist_ok=True)
    return d


def cache_dir() -> Path:
    d = Path(os.environ.get("PGREADY_CACHE", "/var/tmp/pytest-pgready-cache" if os.geteuid() == 0
                            else f"/var/tmp/pytest-pgready-cache-{os.getuid()}"))
    d.mkdir(mode=0o755, exist_ok=True, parents=True)
    service_user().chown(d)
    return d


def _proc_start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def new_run_dir(*, private: bool = False) -> Path:
    """A fresh directory for one cluster, tagged with its owner so a later run can reap it (kill what runs
    inside it, remove it). `private`: for processes of our own user holding secrets (a load run's DSN
    file): mode 0700 and ours, never handed to the service user."""
    reap()
    d = base_dir() / "run" / secrets.token_hex(4)
    d.mkdir(mode=0o700 if private else 0o755)
    (d / "owner.json").write_text(json.dumps({"pid": os.getpid(), "start": _proc_start_time(os.getpid())}))
    if private:
        d.chmod(0o700)  # whatever the umask did
    else:
        service_user().chown(d)
    return d


def _owner_alive(d: Path) -> bool:
    try:
        o = json.loads((d / "owner.json").read_text())
    except (OSError, ValueError):
        # no owner file yet: a directory being created right now, or garbage; give it a minute
        try:
            return time.time() - d.stat().st_mtime < 60
        except OSError:
            return False
    return _proc_start_time(int(o["pid"])) == o.get("start") and o.get("start") is not None


def processes_under(d: Path) -> list[int]:
    """Processes whose command line or working directory is inside d (postmasters, backends, pgbouncer …)."""
    prefix = str(d)
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if prefix in cmd or cwd == prefix or cwd.startswith(prefix + "/"):
            out.append(int(entry))
    return out


def kill_tree(d: Path, timeout: float = 10.0) -> None:
    pids = processes_under(d)
    for sig in (signal.SIGCONT, signal.SIGKILL):  # a frozen (SIGSTOPped) process must be thawed to die cleanly
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and processes_under(d):
        time.sleep(0.05)


def remove_dir(d: Path) -> None:
    kill_tree(d)
    shutil.rmtree(d, ignore_errors=True)


def reap() -> list[Path]:
    """Remove clusters whose owning pytest process is gone (crashed, SIGKILLed)."""
    run = base_dir() / "run"
    reaped = []
    lock = open(base_dir() / "reaper.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for d in sorted(run.iterdir()):
            if d.is_dir() and not _owner_alive(d):
                remove_dir(d)
                reaped.append(d)
    finally:
        lock.close()
    return reaped


def free_port() -> int:
    """A loopback port nobody holds, never handed out twice within a minute across processes (xdist)."""
    reg = base_dir() / "ports.json"
    with open(base_dir() / "ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            taken = {int(k): v for k, v in json.loads(reg.read_text()).items()}
        except (OSError, ValueError):
            taken = {}
        now = time.time()
        taken = {p: t for p, t in taken.items() if now - t < 60}
        for _ in range(200):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in taken:
                taken[port] = now
                reg.write_text(json.dumps(taken))
                return port
    raise RuntimeError("no free loopback port found")


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM would end Python without finalizers or atexit: turn it into KeyboardInterrupt so every
    cluster is torn down (processes stopped, directories removed). Main thread only; a handler the
    user installed is left alone."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _raise(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us the hard way
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)
