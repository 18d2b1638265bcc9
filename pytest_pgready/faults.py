"""Faults the drills inject: Toxiproxy toxics on the cluster's links, and process faults on nodes.

Every toxic is a context manager that removes exactly what it added when the block ends, also on
exception, so a failed drill never leaves a link broken for the next one.

Why not the `toxiproxy` package (toxiproxy-python 0.1.1, 2019): it keeps the server's host and port
in class attributes of `APIConsumer` (one server per process, shared by every cluster and xdist
worker in it), its `requests` calls carry no timeout (a hung server hangs the drill), and it needs
the Python-2 compatibility package `future`. The drills therefore talk to each cluster's own server
through `cluster.toxiproxy` (`cluster.toxiproxy_api.ToxiproxyAPI`), which has a timeout on every call.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .cluster.binaries import TOXIPROXY_HINT
from .cluster.local import clear_stale_pidfile
from .cluster.model import Unsupported

STREAMS = ("downstream", "upstream")  # downstream: server → client; upstream: client → server


# ------------------------------------------------------------------------------------------ toxiproxy
def toxiproxy_reason(cluster: Any) -> str:
    """Why a Toxiproxy drill cannot run here, with what to install."""
    why = cluster.toxiproxy_missing or "no Toxiproxy in this cluster"
    if TOXIPROXY_HINT in why:
        return f"Toxiproxy drill: {why}"
    return f"Toxiproxy drill: {why}; install toxiproxy-server: {TOXIPROXY_HINT}"


def require_toxiproxy(cluster: Any, *proxies: str) -> Any:
    """The cluster's Toxiproxy API, or Unsupported (→ the check is na) naming the install hint."""
    if cluster.toxiproxy is None:
        raise Unsupported(toxiproxy_reason(cluster))
    missing = [p for p in proxies if p not in cluster.proxies]
    if missing:
        raise Unsupported(f"Toxiproxy drill: this cluster has no {', '.join(missing)} proxy")
    return cluster.toxiproxy


@contextmanager
def toxic(cluster: Any, proxy: str, type: str, attributes: dict[str, Any], *,
          streams: tuple[str, ...] = ("downstream",)) -> Iterator[list[str]]:
    """Add one toxic per stream to `proxy`; remove them all when the block ends."""
    api = require_toxiproxy(cluster, proxy)
    added: list[str] = []
    try:
        for stream in streams:
            name = f"pgready_{type}_{stream}_{secrets.token_hex(3)}"
            api.add_toxic(proxy, type, attributes, name=name, stream=stream)
            added.append(name)
        yield added
    finally:
        errors = []
        for name in added:
            try:
                api.remove_toxic(proxy, name)
            except Exception as e:  # keep removing the others; report after
                errors.append(e)
        if errors:
            try:
                api.reset()  # last resort: every toxic off, every proxy on
            except Exception:
                pass


def latency(cluster: Any, proxy: str, ms: int, jitter_ms: int = 0, streams: tuple[str, ...] = ("downstream",)):
    """Delay every chunk of data by `ms` (± jitter)."""
    return toxic(cluster, proxy, "latency", {"latency": int(ms), "jitter": int(jitter_ms)}, streams=streams)


def bandwidth(cluster: Any, proxy: str, kb_per_s: int, streams: tuple[str, ...] = ("downstream",)):
    """Throttle the link to `kb_per_s` KB/s."""
    return toxic(cluster, proxy, "bandwidth", {"rate": int(kb_per_s)}, streams=streams)


def blackhole(cluster: Any, proxy: str, close_after_ms: int = 0, streams: tuple[str, ...] = STREAMS):
    """Toxiproxy's `timeout` toxic: no data passes; with 0 the connection stays open and silent (a hung
    peer, the partition TCP cannot see), else Toxiproxy closes it after `close_after_ms`.
    Data held by the toxic is delivered when the toxic is removed; disable the proxy to drop it."""
    return toxic(cluster, proxy, "timeout", {"timeout": int(close_after_ms)}, streams=streams)


def reset_peer(cluster: Any, proxy: str, after_ms: int = 0, streams: tuple[str, ...] = ("downstream",)):
    """Connections are reset (TCP RST) after `after_ms`."""
    return toxic(cluster, proxy, "reset_peer", {"timeout": int(after_ms)}, streams=streams)


def limit_data(cluster: Any, proxy: str, nbytes: int, streams: tuple[str, ...] = ("downstream",)):
    """Close a connection once `nbytes` passed."""
    return toxic(cluster, proxy, "limit_data", {"bytes": int(nbytes)}, streams=streams)


@contextmanager
def proxy_disabled(cluster: Any, proxy: str) -> Iterator[None]:
    """Close every connection through `proxy` and refuse new ones; re-enabled when the block ends."""
    api = require_toxiproxy(cluster, proxy)
    api.set_enabled(proxy, False)
    try:
        yield
    finally:
        api.set_enabled(proxy, True)


def drop_connections(cluster: Any, proxy: str) -> None:
    """Close every connection through `proxy` now (data held by toxics is discarded), then accept again."""
    with proxy_disabled(cluster, proxy):
        pass


# ------------------------------------------------------------------------------------------ processes
def node_pids(node: Any) -> list[int]:
    """Every process of a local node (postmaster and children: their cwd is the data dir)."""
    if getattr(node, "datadir", None) is None or not hasattr(node, "cluster"):
        raise Unsupported(f"{node.name}: its processes are not visible to pgready (not a local node)")
    from .cluster.sandbox import processes_under

    return processes_under(node.datadir)


def kill_postmaster(node: Any) -> float:
    """SIGKILL the postmaster (a crash: no shutdown checkpoint, no goodbye to standbys). Returns when."""
    t = time.time()
    node.kill(signal.SIGKILL)
    return t


def stonith(node: Any, timeout: float = 15) -> float:
    """SIGKILL every process of the node, frozen ones included (SIGKILL works on a stopped process):
    a fenced node cannot finish a commit it had started. Returns when."""
    t = time.time()
    for pid in node_pids(node):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(node, timeout)
    return t


def wait_gone(node: Any, timeout: float = 15) -> None:
    """Wait (bounded) until no process of the node is left: a restart or pg_rewind needs its shared
    memory free, and backends orphaned by a killed postmaster linger for a moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node_pids(node):
            clear_stale_pidfile(node)
            return
        time.sleep(0.02)
    left = node_pids(node)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.2)
    if node_pids(node):
        raise TimeoutError(f"{node.name}: processes {left} still alive {timeout:.0f}s after the kill")
    clear_stale_pidfile(node)


@contextmanager
def frozen(node: Any) -> Iterator[float]:
    """SIGSTOP the node's processes (sockets open, nothing answers); SIGCONT when the block ends."""
    t = time.time()
    node.freeze()
    try:
        yield t
    finally:
        try:
            node.thaw()
        except Exception:
            pass


def clean_stop(node: Any, mode: str = "fast", timeout: float = 60) -> float:
    """pg_ctl stop: fast shutdown waits for standbys to receive the shutdown checkpoint."""
    t = time.time()
    node.stop(mode=mode, timeout=timeout)
    return t


def durability(node: Any, cluster: Any) -> dict[str, Any]:
    """What a crash drill ran with: fsync and synchronous_commit as the server reports them."""
    out: dict[str, Any] = {"relaxed": list(getattr(cluster, "durability_relaxed", []) or [])}
    try:
        with node.connect(dbname="postgres", connect_timeout=5) as c:
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                out[name] = c.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]
    except Exception as e:
        out["unreadable"] = f"{e.__class__.__name__}"
    if out.get("fsync") == "off" and "fsync=off" not in " ".join(out["relaxed"]):
        out["relaxed"].append("fsync=off")
    return out


# ------------------------------------------------------------------------------------------ WAL volume
def generate_wal(node: Any, megabytes: float, timeout: float = 120, checkpoint: bool = True) -> int:
    """Advance the primary's WAL by at least `megabytes` with segment switches (cheap: a switch skips to
    the next 16 MB boundary), then CHECKPOINT so retention limits are applied. Returns the bytes."""
    if megabytes <= 0:
        return 0
    want = int(megabytes * 1024 * 1024)
    deadline = time.monotonic() + timeout
    with node.connect(dbname="postgres", connect_timeout=5) as c:
        start = c.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        done = 0
        while done < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {done >> 20} of {megabytes:.0f} MB of WAL written in {timeout:.0f}s")
            # a switch is a no-op on an idle segment: log something first (assigning a transaction id
            # writes a commit record)
            c.execute("SELECT pg_current_xact_id()")
            c.execute("SELECT pg_switch_wal()")
            done = int(c.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s::pg_lsn)", (start,)).fetchone()[0])
        if checkpoint:
            c.execute("CHECKPOINT")
    return done


# ------------------------------------------------------------------------------------------ commands
PLACEHOLDERS = ("old_primary_host", "old_primary_port", "old_primary_pgdata", "new_primary_host",
                "new_primary_port", "new_primary_pgdata")


def render_command(template: str, old: Any, new: Any | None) -> str:
    """Fill a promote/fence template; every value is shell-quoted. Unknown placeholders are errors."""
    values = {"old_primary_host": old.host, "old_primary_port": old.port,
              "old_primary_pgdata": old.datadir or "",
              "new_primary_host": new.host if new else "", "new_primary_port": new.port if new else "",
              "new_primary_pgdata": (new.datadir or "") if new else ""}
    try:
        return template.format(**{k: shlex.quote(str(v)) for k, v in values.items()})
    except (KeyError, IndexError, ValueError) as e:
        raise ValueError(f"command template {template!r}: unknown placeholder {e}; use "
                         + ", ".join("{" + p + "}" for p in PLACEHOLDERS)) from None


def run_command(cluster: Any, command: str, timeout: float = 120) -> dict[str, Any]:
    """Run a user's HA command (shell) with the cluster's tool environment and the PostgreSQL bin dir on
    PATH, bounded. Returns exit code, seconds and the output tails (secrets are masked by the report)."""
    env = dict(os.environ)
    if hasattr(cluster, "tool_env"):
        env.update(cluster.tool_env())
    if getattr(cluster, "bin", None) is not None:
        env["PATH"] = f"{cluster.bin.bindir}:{env.get('PATH', '/usr/bin:/bin')}"
    t = time.monotonic()
    try:
        r = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout, env=env,
                           stdin=subprocess.DEVNULL, cwd=str(getattr(cluster, "workdir", None) or "/tmp"))
        code, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        code, out, err = None, str(e.stdout or ""), f"timed out after {timeout:.0f}s"
    return {"exit_code": code, "seconds": round(time.monotonic() - t, 3),
            "stdout": (out or "").strip()[-300:], "stderr": (err or "").strip()[-300:]}
