"""Failover drills: pgready acts as a small HA manager (or hands over to yours) and measures.

The HA procedure (`fail_over`): detect the loss of the primary (bounded probes), fence it
(`fence_command`, or pgready's own: SIGKILL every process of the old primary), promote the most
advanced standby (by received/replayed LSN) — or run `promote_command` and wait (bounded) for a
writable primary among the other nodes — then repoint the remaining standbys (primary_conninfo +
slot + reload) and PgBouncer. `rejoin` brings the old primary back as a standby with pg_rewind
(falling back to pg_basebackup where asked). The cluster model follows: `cluster.primary` is the
new primary afterwards.

The scenarios — `crash_drill` (kill, or a planned clean stop, with an optional replication stall),
`fence_drill`, `partition_drill`, `client_fault_drill`, `replica_restart_drill`, `slot_limit_drill`,
`convergence` and `pooled_after_failover` — return what they measured and the problems they saw;
the suites turn those into verdicts. Every wait is bounded; load targets 127.0.0.1 only and stops
by itself.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .. import faults
from ..cluster.model import Unsupported
from .oracle import ACK, Attempt, Verdict, acks_from, analyze, create_table, lsn_int, read_rows
from .writers import WriterPool

TLI_SQL = "SELECT ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int"
POSITION_SQL = ("SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                "current_setting('primary_slot_name')")
ENSURE_SLOT_SQL = ("SELECT pg_create_physical_replication_slot(%s) "
                   "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)")
STREAMING_SQL = ("SELECT application_name, replay_lsn::text FROM pg_stat_replication WHERE state = 'streaming'")


# ------------------------------------------------------------------------------------------ probes
def probe(node: Any, timeout: float = 1.0) -> str | None:
    """'primary', 'standby', or None when the node does not answer within `timeout` (a frozen node
    accepts TCP connections and says nothing: the probe runs in a thread and is abandoned)."""
    out: list[str | None] = []

    def run() -> None:
        try:
            with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
                out.append("standby" if c.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "primary")
        except Exception:
            out.append(None)

    t = threading.Thread(target=run, daemon=True, name=f"pgready-probe-{node.name}")
    t.start()
    t.join(timeout)
    return out[0] if out else None


def detect_loss(node: Any, timeout: float, *, probe_timeout: float = 1.0, interval: float = 0.05,
                failures: int = 2) -> float | None:
    """Seconds until `failures` consecutive probes found no primary on `node`; None if it kept answering."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    misses = 0
    while time.monotonic() < deadline:
        if probe(node, probe_timeout) != "primary":
            misses += 1
            if misses >= failures:
                return time.monotonic() - t0
        else:
            misses = 0
        time.sleep(interval)
    return None


def positions(nodes: Sequence[Any]) -> list[dict[str, Any]]:
    """Where each standby is: received and replayed LSN (a node that does not answer is listed as such)."""
    out = []
    for n in nodes:
        row: dict[str, Any] = {"node": n.name}
        try:
            with n.connect(dbname="postgres", connect_timeout=2, options="") as c:
                rec, recv, replay, slot = c.execute(POSITION_SQL).fetchone()
            row.update(in_recovery=rec, receive_lsn=recv, replay_lsn=replay, slot=slot or None,
                       position=max(lsn_int(recv) or 0, lsn_int(replay) or 0))
        except Exception as e:
            row.update(unreachable=e.__class__.__name__, position=-1)
        out.append(row)
    return out


def most_advanced(nodes: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
    """The standby with the most WAL (received or replayed): promoting it loses the least."""
    pos = positions(nodes)
    best = max(range(len(nodes)), key=lambda i: pos[i]["position"])
    if pos[best]["position"] < 0:
        raise RuntimeError("no standby answers: nothing to promote")
    return nodes[best], pos


def timeline(node: Any) -> int | None:
    try:
        with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
            return int(c.execute(TLI_SQL).fetchone()[0])
    except Exception:
        return None


def switch_point(node: Any, tli: int) -> int | None:
    """Where timeline `tli` forked from its parent (last line of its history file), on the new primary."""
    try:
        with node.connect(dbname="postgres", connect_timeout=2, options="") as c:
            text = c.execute("SELECT pg_read_file(%s)", (f"pg_wal/{tli:08X}.history",)).fetchone()[0]
    except Exception:
        return None
    lines = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return lsn_int(lines[-1][1]) if lines else None


def wait_writable(nodes: Sequence[Any], timeout: float) -> Any | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for n in nodes:
            if probe(n, 1.0) == "primary":
                return n
        time.sleep(0.05)
    return None


# ------------------------------------------------------------------------------------------ HA steps
def fence(cluster: Any, settings: Any, old: Any, new: Any | None = None) -> dict[str, Any]:
    """fence_command when configured, else pgready's own fence: SIGKILL every process of the old primary."""
    if settings.fence_command:
        cmd = faults.render_command(settings.fence_command, old, new)
        return {"method": "fence_command", **faults.run_command(cluster, cmd)}
    t = time.monotonic()
    faults.stonith(old)
    return {"method": "pgready: SIGKILL every process of the old primary", "seconds": round(time.monotonic() - t, 3)}


def slot_name(node: Any) -> str:
    return node.name.replace("-", "_").lower()


def ensure_slot(primary: Any, slot: str) -> None:
    with primary.connect(dbname="postgres", connect_timeout=5, options="") as c:
        c.execute(ENSURE_SLOT_SQL, (slot, slot))


def conninfo_to(source: Any, target: Any) -> str:
    """The standby conninfo of `source` (its primary_conninfo, or the cluster's replication user) aimed at
    `target` directly (not through Toxiproxy)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    ci = ""
    try:
        with source.connect(dbname="postgres", connect_timeout=2, options="") as c:
            ci = c.execute("SELECT current_setting('primary_conninfo')").fetchone()[0] or ""
    except Exception:
        pass
    params = dict(conninfo_to_dict(ci)) if ci else {}
    if not params:
        from ..cluster.template import REPLICATION_USER

        wd = getattr(getattr(target, "cluster", None), "workdir", None)
        params = {"user": REPLICATION_USER, **({"passfile": str(wd / "pgpass")} if wd else {})}
    params.pop("application_name", None)
    params.update(host=target.host, port=str(target.port))
    return make_conninfo(**params)


def repoint_standby(standby: Any, new: Any) -> str:
    slot = slot_name(standby)
    ensure_slot(new, slot)
    standby.set_conf(primary_conninfo=conninfo_to(standby, new), primary_slot_name=slot)
    return standby.name


def set_primary(cluster: Any, new: Any, old: Any | None) -> None:
    """The cluster model follows the promotion: clients asking for 'primary' get the new one."""
    others = [n for n in [cluster.primary, *cluster.replicas] if n is not new and n is not old]
    cluster.primary = new
    cluster.replicas = others
    new.role = "primary"
    if old is not None:
        old.role = "old-primary"


@dataclass
class Failover:
    old: Any
    new: Any
    method: str = "pgready"
    detect_s: float | None = None
    promote_s: float | None = None
    fence: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    old_tli: int | None = None
    new_tli: int | None = None
    promotion_lsn: int | None = None
    promote_started: float = 0.0  # wall clock
    promoted_at: float = 0.0
    repointed: list[str] = field(default_factory=list)
    pooler: str | None = None
    problems: list[str] = field(default_factory=list)

    def evidence(self) -> dict[str, Any]:
        return {"old_primary": self.old.name, "new_primary": self.new.name if self.new else None,
                "method": self.method, "detect_s": _r(self.detect_s), "promote_s": _r(self.promote_s),
                "fence": self.fence, "promote_command": self.command, "candidates": self.candidates,
                "old_timeline": self.old_tli, "new_timeline": self.new_tli,
                "promotion_lsn": _lsn_text(self.promotion_lsn), "repointed_standbys": self.repointed,
                "pooler": self.pooler, "problems": self.problems}


def fail_over(cluster: Any, settings: Any, old: Any, *, detect_timeout: float = 30, do_fence: bool = False,
              repoint_pooler: bool = True, old_tli: int | None = None) -> Failover:
    """Detect, (fence), promote, repoint. Raises when no primary appears within resume_timeout_seconds."""
    fo = Failover(old, None, old_tli=old_tli)
    fo.detect_s = detect_loss(old, detect_timeout)
    if fo.detect_s is None:
        fo.problems.append(f"the old primary still answered {detect_timeout:.0f}s after the fault")
    standbys = [n for n in cluster.replicas if n is not old]
    if not standbys:
        raise Unsupported("failover drill: the cluster has no standby to promote")
    candidate, fo.candidates = most_advanced(standbys)
    if do_fence:
        fo.fence = fence(cluster, settings, old, candidate)
    fo.promote_started = time.time()
    t = time.monotonic()
    if settings.promote_command:
        fo.method = "promote_command"
        fo.command = faults.run_command(cluster, faults.render_command(settings.promote_command, old, candidate),
                                        timeout=settings.resume_timeout_seconds)
        new = wait_writable(standbys, settings.resume_timeout_seconds)
        if new is None:
            raise RuntimeError(f"promote_command ran (exit {fo.command['exit_code']}) but no standby became "
                               f"writable within {settings.resume_timeout_seconds:.0f}s")
    else:
        new = candidate
        new.promote(timeout=settings.resume_timeout_seconds)
    fo.promote_s = time.monotonic() - t
    fo.promoted_at = time.time()
    fo.new = new
    fo.new_tli = timeline(new)
    if fo.new_tli:
        fo.promotion_lsn = switch_point(new, fo.new_tli)
    set_primary(cluster, new, old)
    if fo.method == "pgready":  # your HA tool repoints on its own; pgready checks that it did
        for s in standbys:
            if s is not new:
                try:
                    fo.repointed.append(repoint_standby(s, new))
                except Exception as e:
                    fo.problems.append(f"repointing {s.name} failed: {e.__class__.__name__}: {_line(e)}")
        if repoint_pooler and cluster.pooler is not None:
            try:
                cluster.pooler.repoint(new)
                fo.pooler = f"repointed to {new.name}"
            except Unsupported as e:
                fo.pooler = f"not repointed: {e}"
            except Exception as e:  # PgBouncer itself is gone or hung: the clients through it will say so
                fo.pooler = f"repointing failed: {e.__class__.__name__}: {_line(e)}"
                fo.problems.append(f"PgBouncer did not take the new primary ({_line(e)}): is it still running?")
    elif cluster.pooler is not None:
        fo.pooler = "left to promote_command"
    return fo


# ------------------------------------------------------------------------------------------ rejoin
def rejoin(cluster: Any, old: Any, new: Any, *, method: str = "rewind", fallback: bool = False,
           timeout: float = 120) -> dict[str, Any]:
    """Bring the old primary back as a standby of `new`: pg_rewind (or pg_basebackup), standby.signal,
    primary_conninfo + slot, start, wait until it streams. Local nodes only."""
    if old.datadir is None or not hasattr(cluster, "run_tool") or not hasattr(old, "write_node_conf"):
        raise Unsupported(f"{old.name}: pgready cannot rebuild this node (not a local node)")
    out: dict[str, Any] = {"node": old.name, "method": method}
    t0 = time.monotonic()
    if old.is_running():
        old.thaw()
        old.stop(mode="immediate", timeout=30)
    faults.wait_gone(old)
    slot = slot_name(old)
    ensure_slot(new, slot)
    conninfo = conninfo_to(new, new)
    src = new.endpoint.conninfo(dbname="postgres", user=new.endpoint.user)
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    src_params = {k: v for k, v in conninfo_to_dict(src).items() if k != "password"}  # pgpass: no secret in argv
    if method == "rewind":
        # pg_rewind reads the source's timeline from its control file, which a freshly promoted server
        # updates only at its first checkpoint: without one it sees "the same timeline, no rewind required"
        with new.connect(dbname="postgres", connect_timeout=5, options="") as c:
            c.execute("CHECKPOINT")
        r = cluster.run_tool(["pg_rewind", "-D", str(old.datadir), "--source-server", make_conninfo(**src_params),
                              "--no-sync"], as_owner=True, timeout=timeout)
        out["pg_rewind_output"] = _tail_lines(r.stderr + r.stdout)
        if r.returncode != 0:
            out["pg_rewind_error"] = _error_line(r.stderr + r.stdout) or f"exit code {r.returncode}"
            if not fallback:
                return _done(out, t0, f"pg_rewind failed: {out['pg_rewind_error']}")
            method = out["method"] = "pg_basebackup (after pg_rewind failed)"
    if method != "rewind":
        import shutil

        from ..cluster.template import REPLICATION_USER

        shutil.rmtree(old.datadir, ignore_errors=True)
        r = cluster.run_tool(["pg_basebackup", "-h", new.host, "-p", str(new.port), "-U", REPLICATION_USER,
                              "-D", str(old.datadir), "-X", "stream", "-S", slot, "-c", "fast", "--no-sync"],
                             as_owner=True, timeout=timeout)
        if r.returncode != 0:
            return _done(out, t0, f"pg_basebackup failed: {_error_line(r.stderr) or r.returncode}")
    _standby_config(cluster, old, conninfo, slot)
    try:
        old.start(timeout=timeout)
    except RuntimeError as e:
        return _done(out, t0, f"{old.name} did not start as a standby: {_line(e)}")
    old.role = "replica"
    if old not in cluster.replicas:
        cluster.replicas.append(old)
    lag = wait_caught_up(new, old.name, timeout=timeout)
    out["streaming"] = lag is not None
    return _done(out, t0, None if lag is not None else
                 f"{old.name} did not stream from {new.name} within {timeout:.0f}s: {_log_tail(old)}")


def _done(out: dict[str, Any], t0: float, error: str | None) -> dict[str, Any]:
    out["seconds"] = round(time.monotonic() - t0, 3)
    if error:
        out["error"] = error
    return out


def _error_line(text: str) -> str:
    """The line of a tool's output that says what went wrong."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln or "FATAL" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else ""


def _standby_config(cluster: Any, node: Any, conninfo: str, slot: str) -> None:
    """pg_rewind copied the source's config files: give the node back its own, as a standby."""
    import re

    node.write_node_conf()
    auto = Path(node.datadir) / "postgresql.auto.conf"
    keep = []
    if auto.exists():
        for line in auto.read_text(errors="replace").splitlines():
            m = re.match(r"\s*([A-Za-z_][\w.]*)\s*=", line)
            if m and m.group(1).lower() in ("primary_conninfo", "primary_slot_name", "synchronous_standby_names"):
                continue
            keep.append(line)
    q = lambda v: "'" + v.replace("'", "''") + "'"
    keep += [f"primary_conninfo = {q(conninfo)}", f"primary_slot_name = {q(slot)}"]
    auto.write_text("\n".join(keep) + "\n")
    sig = Path(node.datadir) / "standby.signal"
    sig.write_text("")
    for p in (auto, sig):
        cluster.user.chown(p)
    (Path(node.datadir) / "postmaster.pid").unlink(missing_ok=True)


def current_lsn(node: Any) -> int:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        return lsn_int(c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])


def wait_caught_up(primary: Any, name: str, timeout: float, target: int | None = None) -> float | None:
    """Seconds until standby `name` streams from `primary` with replay ≥ target (default: the primary's
    position now); None when it did not within `timeout`."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        try:
            with primary.connect(dbname="postgres", connect_timeout=2, options="") as c:
                if target is None:
                    target = lsn_int(c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0])
                rows = dict(c.execute(STREAMING_SQL).fetchall())
            replay = lsn_int(rows.get(name))
            if replay is not None and replay >= target:
                return time.monotonic() - t0
        except Exception:
            pass
        time.sleep(0.05)
    return None


# ------------------------------------------------------------------------------------------ stalls
def stop_walreceiver(standby: Any, timeout: float = 15) -> int | None:
    """Cut a standby off its primary with its own knobs (primary_conninfo = '' + reload): nothing in flight
    can reach it afterwards. Returns the LSN it had received when the walreceiver was gone."""
    standby.set_conf(primary_conninfo="")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with standby.connect(dbname="postgres", connect_timeout=2, options="") as c:
            if c.execute("SELECT count(*) FROM pg_stat_wal_receiver").fetchone()[0] == 0:
                return lsn_int(c.execute("SELECT pg_last_wal_receive_lsn()::text").fetchone()[0])
        time.sleep(0.02)
    raise TimeoutError(f"{standby.name}: walreceiver still running {timeout:.0f}s after primary_conninfo=''")


def quiesce(primary: Any, standby: Any, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary wrote so far."""
    if wait_caught_up(primary, standby.name, timeout) is None:
        raise TimeoutError(f"{standby.name} did not catch up with {primary.name} within {timeout:.0f}s")


# ------------------------------------------------------------------------------------------ crash drill
@dataclass
class CrashRun:
    """One kill (or stop) → promote → resume trial, with the oracle's verdict."""
    failover: Failover
    verdict: Verdict
    fault_at: float
    resumed_s: dict[str, float | None]
    stats: dict[str, Any]
    stall: dict[str, Any] | None = None
    durability: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = list(self.failover.problems)
        for path, s in self.resumed_s.items():
            if s is None:
                out.append(f"writes through {path} did not resume on {self.failover.new.name}")
        return out

    def evidence(self) -> dict[str, Any]:
        return {"failover": self.failover.evidence(), "oracle": self.verdict.evidence(),
                "resumed_after_fault_s": {k: _r(v) for k, v in self.resumed_s.items()},
                "clients": self.stats, "stall": self.stall, "durability": self.durability}


def writer_paths(cluster: Any, names: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for n in names:
        try:
            out.append((n, cluster.client_path(n)))
        except Unsupported:
            continue
    if not out:
        raise Unsupported(f"none of the client paths {list(names)} exists in this cluster")
    return out


def _pool(cluster: Any, settings: Any, paths: Sequence[str], first_id: int) -> WriterPool:
    return WriterPool(writer_paths(cluster, paths), settings.failover_writers, first_id=first_id,
                      deadline_s=settings.client_query_timeout_s, conninfo=settings.client_conninfo)


def crash_drill(cluster: Any, settings: Any, *, paths: Sequence[str] = ("multihost",), first_id: int = 1,
                stall_s: float = 0.0, planned: bool = False, warmup_s: float = 0.4, after_s: float = 0.4,
                fence_first: bool = False) -> CrashRun:
    """Writers run; the primary is killed (or, planned, stopped cleanly); a standby is promoted; the
    writers must resume on it; the oracle compares. `stall_s` cuts the promotion candidate off the WAL
    stream that long before the crash (the lag an RPO must cover)."""
    old = cluster.primary
    with old.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    standbys = [n for n in cluster.replicas]
    if not standbys:
        raise Unsupported("failover drill: the cluster has no standby")
    for s in standbys:
        quiesce(old, s)
    dur = faults.durability(old, cluster)
    old_tli = timeline(old)
    pool = _pool(cluster, settings, paths, first_id)
    stall = None
    resumed: dict[str, float | None] = {}
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the fault: {pool.stats()}")
        time.sleep(warmup_s)
        if stall_s > 0:
            t = time.time()
            for s in standbys:
                stop_walreceiver(s)
            stall = {"method": "walreceiver stopped (primary_conninfo = '')", "seconds": stall_s,
                     "standbys": [s.name for s in standbys]}
            time.sleep(max(0.0, stall_s - (time.time() - t)))
        if planned:
            fault_at = faults.clean_stop(old, mode="fast")
        else:
            fault_at = faults.kill_postmaster(old)
            faults.wait_gone(old)
        fo = fail_over(cluster, settings, old, detect_timeout=settings.resume_timeout_seconds, old_tli=old_tli,
                       do_fence=fence_first)
        for name in pool.paths:
            t = pool.wait_ack(fault_at, settings.resume_timeout_seconds, port=fo.new.port, path=name)
            resumed[name] = None if t is None else t - fault_at
        time.sleep(after_s)
        attempts = pool.stop()
    with fo.new.connect(dbname=None, connect_timeout=5, options="") as c:
        rows = read_rows(c, pool.ids)
    verdict = analyze(attempts, rows, fault_at=fault_at, promotion_lsn=fo.promotion_lsn, old_tli=old_tli,
                      new_port=fo.new.port)
    return CrashRun(fo, verdict, fault_at, resumed, pool.stats(), stall, dur, attempts)


# ------------------------------------------------------------------------------------------ helpers
def _r(v: float | None, nd: int = 3) -> float | None:
    return None if v is None else round(v, nd)


def _lsn_text(v: int | None) -> str | None:
    return None if v is None else f"{v >> 32:X}/{v & 0xFFFFFFFF:X}"


def _line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [e.__class__.__name__])[0][:300]


def _tail_lines(text: str, n: int = 4) -> list[str]:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return [ln[:300] for ln in lines[-n:]] or [""]


def _log_tail(node: Any) -> str:
    return node.log_tail(3) if hasattr(node, "log_tail") else ""


# ------------------------------------------------------------------------------------------ FO005: fence
@dataclass
class FenceRun:
    failover: Failover
    violations: list[Attempt]
    thawed_at: float
    stats: dict[str, Any]
    new_acks: dict[str, int]

    def evidence(self, limit: int = 10) -> dict[str, Any]:
        t0 = self.failover.promote_started
        return {"failover": self.failover.evidence(), "clients": self.stats,
                "acknowledged_by_new_primary": self.new_acks,
                "acknowledged_by_old_primary_after_promotion": len(self.violations),
                "violations": [f"writer {a.writer} seq {a.seq} via {a.path}: committed on {self.failover.old.name} "
                               f"(timeline {a.tli}) {a.committed_at - t0:+.3f}s after promotion began"
                               for a in self.violations[:limit]],
                "thawed_s_after_promotion": round(self.thawed_at - t0, 3)}


def fence_drill(cluster: Any, settings: Any, *, paths: Sequence[str] = ("primary", "multihost", "pooler"),
                first_id: int = 1, warmup_s: float = 0.4, observe_s: float = 1.0) -> FenceRun:
    """Freeze the primary (SIGSTOP: sockets open, nothing answers), detect, fence, promote, thaw, and
    watch every client path: the old primary must acknowledge nothing once promotion began."""
    from .writers import CANCEL_GRACE_S

    old = cluster.primary
    with old.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    for s in cluster.replicas:
        quiesce(old, s)
    old_tli = timeline(old)
    pool = _pool(cluster, settings, paths, first_id)
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the fault: {pool.stats()}")
        time.sleep(warmup_s)
        old.freeze()
        try:
            fo = fail_over(cluster, settings, old, detect_timeout=settings.resume_timeout_seconds,
                           do_fence=True, old_tli=old_tli)
        finally:
            try:
                old.thaw()  # a fenced (killed) node has nothing left to thaw
            except Exception:
                pass
        thawed = time.time()
        # long enough for every writer stuck on the frozen node to give up and reconnect somewhere
        time.sleep(pool.deadline_s + CANCEL_GRACE_S + observe_s)
        attempts = pool.stop()
    violations = acks_from(attempts, old.port, fo.promote_started)
    new_acks: dict[str, int] = {}
    for a in attempts:
        if a.outcome == ACK and a.server_port == fo.new.port:
            new_acks[a.path] = new_acks.get(a.path, 0) + 1
    return FenceRun(fo, violations, thawed, pool.stats(), new_acks)


# ------------------------------------------------------------------------------------------ FO004: partition
@dataclass
class PartitionPhase:
    mode: str
    partition_s: float
    acked_during: list[Attempt]
    unknown_sync_cancel: int
    catchup_s: float | None
    stats: dict[str, Any]
    settings: dict[str, str]
    wal_written_mb: float = 0.0
    slot_status: str | None = None
    problems: list[str] = field(default_factory=list)

    def evidence(self, limit: int = 10) -> dict[str, Any]:
        return {"mode": self.mode, "partition_s": round(self.partition_s, 3),
                "acknowledged_during_partition": len(self.acked_during),
                "examples": [f"writer {a.writer} seq {a.seq} acknowledged {a.done - a.sent:.3f}s after sending"
                             for a in self.acked_during[:limit]],
                "cancelled_sync_commits_unknown": self.unknown_sync_cancel,
                "standby_caught_up_s": _r(self.catchup_s), "wal_written_during_partition_mb": self.wal_written_mb,
                "slot_wal_status": self.slot_status, "server_settings": self.settings, "clients": self.stats,
                "problems": self.problems}


def server_settings(node: Any, names: Sequence[str]) -> dict[str, str]:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        return {n: c.execute("SELECT current_setting(%s)", (n,)).fetchone()[0] for n in names}


def _slot_status(primary: Any, slot: str) -> str | None:
    try:
        with primary.connect(dbname="postgres", connect_timeout=5, options="") as c:
            r = c.execute("SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
        return r[0] if r else "no slot"
    except Exception as e:
        return f"unreadable ({e.__class__.__name__})"


def partition_phase(cluster: Any, settings: Any, *, mode: str, first_id: int, wal_mb: float = 0,
                    margin_s: float = 0.05) -> PartitionPhase:
    """Writers commit on the primary while the replication link is a blackhole for `partition_seconds`,
    then the link heals and the standby must catch up (bounded)."""
    from .oracle import SYNC_CANCEL_NOTE, UNKNOWN

    primary, standby = cluster.primary, cluster.replicas[0]
    quiesce(primary, standby)
    names = ("synchronous_standby_names", "synchronous_commit")
    pool = _pool(cluster, settings, ("primary",), first_id)
    problems: list[str] = []
    wal = 0
    with pool:
        if pool.wait_ack(time.time() - 60, settings.resume_timeout_seconds) is None:
            raise RuntimeError(f"oracle writers could not write before the partition: {pool.stats()}")
        time.sleep(0.3)
        with faults.blackhole(cluster, "replication", streams=("downstream",)):
            t_part = time.time()
            if wal_mb:
                wal = faults.generate_wal(primary, wal_mb, timeout=max(60.0, settings.partition_seconds * 4))
            time.sleep(max(0.0, settings.partition_seconds - (time.time() - t_part)))
            t_heal = time.time()
            target = current_lsn(primary)
        catchup = wait_caught_up(primary, standby.name, settings.replica_catchup_timeout_s, target)
        time.sleep(0.2)
        attempts = pool.stop()
    if catchup is None:
        problems.append(f"{standby.name} did not catch up within {settings.replica_catchup_timeout_s:.0f}s "
                        f"after the partition healed: {_log_tail(standby)}")
    during = [a for a in attempts if a.outcome == ACK and a.sent >= t_part + margin_s and a.done < t_heal]
    cancelled = sum(1 for a in attempts if a.outcome == UNKNOWN and a.note.startswith(SYNC_CANCEL_NOTE))
    return PartitionPhase(mode, t_heal - t_part, during, cancelled, catchup, pool.stats(),
                          server_settings(primary, names), round(wal / 1048576, 1),
                          _slot_status(primary, slot_name(standby)), problems)


def partition_drill(cluster: Any, settings: Any, *, first_id: int = 1) -> list[PartitionPhase]:
    """FO004 on one cluster built synchronous: the sync phase, then the same partition with replication
    made asynchronous (synchronous_standby_names = '') and `outage_wal_mb` of WAL written meanwhile."""
    faults.require_toxiproxy(cluster, "replication")
    primary = cluster.primary
    with primary.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    phases = [partition_phase(cluster, settings, mode="sync", first_id=first_id)]
    primary.set_conf(synchronous_standby_names="")
    phases.append(partition_phase(cluster, settings, mode="async", first_id=first_id + 50,
                                  wal_mb=settings.outage_wal_mb))
    return phases


# ------------------------------------------------------------------------------------------ FO007: client faults
@dataclass
class Probe:
    fault: str
    kind: str  # "open connection" | "new connection"
    outcome: str  # "error" | "answered" | "hung"
    seconds: float
    error: str = ""

    def evidence(self) -> str:
        tail = f": {self.error}" if self.error else ""
        return f"{self.fault} / {self.kind}: {self.outcome} after {self.seconds:.2f}s{tail}"


def _probe_query(dsn: str, conn: Any, deadline_s: float, watchdog: Any, result: list[Any]) -> None:
    import psycopg

    t = time.monotonic()
    lock, slot = watchdog.register()
    try:
        if conn is None:
            conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
        if deadline_s > 0:
            with lock:
                slot.deadline, slot.fd, slot.conn = time.monotonic() + deadline_s, conn.pgconn.socket, conn
        conn.execute("SELECT 1").fetchone()
        result.append(("answered", time.monotonic() - t, ""))
    except Exception as e:
        result.append(("error", time.monotonic() - t, _line(e)))
    finally:
        with lock:
            slot.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass


def client_fault_drill(cluster: Any, settings: Any) -> list[Probe]:
    """FO007: through the client→primary proxy, latency beyond the bound, a reset and a blackhole; an open
    connection and a new one each run SELECT 1 with the application's settings (client_conninfo, and
    client_query_timeout_s as the client-side deadline). Each must end within max_time_to_error_seconds;
    a probe still waiting at bound + 1.5 s is 'hung' (and is released when the proxy drops it)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .writers import Watchdog

    faults.require_toxiproxy(cluster, "primary")
    bound = settings.max_time_to_error_seconds
    params = dict(conninfo_to_dict(settings.client_conninfo)) if settings.client_conninfo else {}
    params.setdefault("application_name", "pgready-fo007")
    dsn = make_conninfo(cluster.client_path("toxiproxy"), **params)
    lat_ms = int((bound + 0.5) * 1000)  # an answer slower than the bound, arriving before the harness gives up
    cap = bound + 1.5
    scenarios = [("latency", lambda: faults.latency(cluster, "primary", lat_ms)),
                 ("reset_peer", lambda: faults.reset_peer(cluster, "primary", 0, streams=faults.STREAMS)),
                 ("blackhole", lambda: faults.blackhole(cluster, "primary", 0))]
    watchdog = Watchdog()
    watchdog.start()
    out: list[Probe] = []
    try:
        with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as c:  # the path works without faults
            c.execute("SELECT 1")
        for name, make in scenarios:
            opened = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
            opened.execute("SELECT 1")
            threads = []
            with make():
                t_fault = time.monotonic()
                for kind, conn in (("open connection", opened), ("new connection", None)):
                    res: list[Any] = []
                    th = threading.Thread(target=_probe_query, args=(dsn, conn, settings.client_query_timeout_s,
                                                                     watchdog, res), daemon=True)
                    th.start()
                    threads.append((kind, th, res))
                hung = set()
                for kind, th, res in threads:
                    th.join(max(0.0, t_fault + cap - time.monotonic()))
                    if th.is_alive():
                        hung.add(kind)
                faults.drop_connections(cluster, "primary")  # release hung probes before the toxic goes
            for kind, th, res in threads:
                th.join(5)
                if kind in hung or not res:  # whatever it got later, the harness had to cut it loose
                    out.append(Probe(name, kind, "hung", round(cap, 3), "no answer and no error"))
                else:
                    out.append(Probe(name, kind, res[0][0], round(res[0][1], 3), res[0][2]))
    finally:
        watchdog.stop_event.set()
        watchdog.join(2)
    return out


# ------------------------------------------------------------------------------------------ REP005 / REP006
@dataclass
class ReplicaRun:
    down_s: float
    wal_written_mb: float
    catchup_s: float | None
    slot_status: str | None
    problems: list[str] = field(default_factory=list)


def replica_restart_drill(cluster: Any, settings: Any, *, first_id: int = 1) -> ReplicaRun:
    """REP005: SIGKILL a replica while writers commit, write `outage_wal_mb` of WAL while it is down,
    restart it and time how long it takes to replay what the primary had written by then."""
    primary, replica = cluster.primary, cluster.replicas[0]
    with primary.connect(dbname=None, connect_timeout=5, options="") as c:
        create_table(c)
    quiesce(primary, replica)
    problems: list[str] = []
    pool = WriterPool(writer_paths(cluster, ("primary",)), 2, first_id=first_id,
                      deadline_s=settings.client_query_timeout_s, conninfo=settings.client_conninfo)
    with pool:
        t0 = time.monotonic()
        faults.kill_postmaster(replica)
        faults.wait_gone(replica)
        wal = faults.generate_wal(primary, settings.outage_wal_mb) if settings.outage_wal_mb else 0
        time.sleep(max(0.0, 0.5 - (time.monotonic() - t0)))
        target = current_lsn(primary)
        down = time.monotonic() - t0
        t1 = time.monotonic()
        try:
            replica.start(timeout=settings.replica_catchup_timeout_s)
        except Exception as e:
            problems.append(f"{replica.name} did not start: {_line(e)}")
        left = max(1.0, settings.replica_catchup_timeout_s - (time.monotonic() - t1))
        lag = wait_caught_up(primary, replica.name, left, target) if not problems else None
        catchup = None if lag is None else time.monotonic() - t1
        pool.stop()
    if catchup is None and not problems:
        problems.append(f"{replica.name} did not catch up within {settings.replica_catchup_timeout_s:.0f}s: "
                        f"{_log_tail(replica)}")
    return ReplicaRun(round(down, 3), round(wal / 1048576, 1), catchup, _slot_status(primary, slot_name(replica)),
                      problems)


SLOT_DRILL_CAP_MB = 256  # a declared limit above this is scaled down to SLOT_DRILL_SCALED for the drill
SLOT_DRILL_SCALED = "32MB"
SLOT_DRILL_UNBOUNDED_MB = 96  # WAL written to show that an unbounded slot keeps growing


@dataclass
class SlotRun:
    declared_mb: int | None  # None: -1 (unbounded)
    drill_limit: str
    scaled: bool
    statuses: list[tuple[float, str]]
    invalidated_after_mb: float | None
    writable: bool
    write_error: str = ""
    wal_written_mb: float = 0.0


def _limit_mb(node: Any) -> int | None:
    with node.connect(dbname="postgres", connect_timeout=5, options="") as c:
        setting, unit = c.execute("SELECT setting::bigint, unit FROM pg_settings "
                                  "WHERE name = 'max_slot_wal_keep_size'").fetchone()
    if setting < 0:
        return None
    return int(setting) if unit == "MB" else int(setting) // 1024 if unit == "kB" else int(setting)


def slot_limit_drill(cluster: Any, settings: Any) -> SlotRun:
    """REP006: stop a replica cleanly, then write WAL (segment switches + checkpoints) until its slot is
    invalidated ('lost') or clearly past the limit; the primary must accept writes throughout."""
    primary, replica = cluster.primary, cluster.replicas[0]
    declared = _limit_mb(primary)
    scaled = declared is not None and declared > SLOT_DRILL_CAP_MB
    if scaled:
        primary.set_conf(max_slot_wal_keep_size=SLOT_DRILL_SCALED)
    limit = _limit_mb(primary)
    slot = slot_name(replica)
    replica.stop(mode="fast")
    budget = SLOT_DRILL_UNBOUNDED_MB if limit is None else limit + 96
    written = 0.0
    statuses: list[tuple[float, str]] = [(0.0, _slot_status(primary, slot) or "")]
    invalidated = None
    while written < budget:
        written += faults.generate_wal(primary, 16) / 1048576
        st = _slot_status(primary, slot) or ""
        statuses.append((round(written, 1), st))
        if st == "lost":
            invalidated = written
            break
    run = SlotRun(declared, "unbounded (-1)" if limit is None else f"{limit}MB", scaled, statuses, invalidated,
                  False, wal_written_mb=round(written, 1))
    try:
        with primary.connect(dbname=None, connect_timeout=5, options="") as c:
            create_table(c)
            c.execute("INSERT INTO pgready_oracle (writer, seq) VALUES (0, "
                      "(SELECT coalesce(max(seq), 0) + 1 FROM pgready_oracle WHERE writer = 0))")
        run.writable = True
    except Exception as e:
        run.write_error = _line(e)
    return run


# ------------------------------------------------------------------------------------------ FO006 / POOL005
def convergence(new: Any, standby: Any, timeout: float = 60) -> list[str]:
    """After a rejoin: the standby replays up to the primary's position, then both databases are compared
    (row counts and content checksums of every table, sequences). Returns the differences."""
    from .content import compare, snapshot_database

    if wait_caught_up(new, standby.name, timeout) is None:
        return [f"{standby.name} did not catch up with {new.name} within {timeout:.0f}s"]
    db = new.endpoint.dbname
    return [str(d) for d in compare(snapshot_database(new, db), snapshot_database(standby, db))]


@dataclass
class PoolerClients:
    read_only_errors: int
    read_only_details: list[str]
    idle_recovered: int
    idle_total: int
    idle_details: list[str]  # one line per idle client: how it ended
    stats: dict[str, Any]


def idle_clients(cluster: Any, n: int) -> list[Any]:
    """Pooled clients that connected (and ran one statement) before the failover, then sat idle."""
    import psycopg

    out = []
    for _ in range(n):
        c = psycopg.connect(cluster.client_path("pooler"), autocommit=True, prepare_threshold=None,
                            connect_timeout=5)
        c.execute("SELECT 1")
        out.append(c)
    return out


def pooled_after_failover(cluster: Any, settings: Any, idle: list[Any], *, first_id: int,
                          run_s: float = 1.0) -> PoolerClients:
    """Idle clients write again (reconnecting after a connection or pooler error, giving up on a read-only
    error, as an application would surface it) and fresh writers run through the pooler: count the
    read-only errors (SQLSTATE 25006)."""
    import psycopg

    from .oracle import INSERT_SQL

    ro_details: list[str] = []
    idle_details: list[str] = []
    recovered = 0
    deadline = time.monotonic() + settings.resume_timeout_seconds
    for i, conn in enumerate(idle):
        tries, last, ok, read_only = 0, "", False, False
        while not ok and not read_only and time.monotonic() < deadline:
            tries += 1
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(cluster.client_path("pooler"), autocommit=True, prepare_threshold=None,
                                           connect_timeout=5)
                conn.execute(INSERT_SQL, (first_id + 60 + i, tries)).fetchone()
                ok = True
            except psycopg.Error as e:
                last = _line(e)
                if getattr(e, "sqlstate", None) == "25006":
                    read_only = True
                    ro_details.append(f"idle client {i + 1}, try {tries}: {last}")
                else:
                    time.sleep(0.05)
        recovered += ok
        idle_details.append(f"idle client {i + 1}: " + ("wrote again" if ok else "read-only error" if read_only
                                                         else f"gave up at the deadline ({last})")
                            + f" after {tries} tries")
        try:
            if conn is not None:
                conn.close()
        except Exception:
            pass
    pool = _pool(cluster, settings, ("pooler",), first_id)
    with pool:
        time.sleep(run_s)
        pool.stop()
    stats = pool.stats()
    writer_ro = sum(p["sqlstates"].get("25006", 0) for p in stats.values())
    if writer_ro:
        ro_details.append(f"{writer_ro} statements of {settings.failover_writers} pooled writers: "
                          "cannot execute INSERT in a read-only transaction")
    return PoolerClients(len([d for d in ro_details if d.startswith("idle")]) + writer_ro, ro_details, recovered,
                         len(idle), idle_details, stats)
