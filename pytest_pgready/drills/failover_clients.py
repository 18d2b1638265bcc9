"""FO007, client faults: latency, a reset and a blackhole between the client and the primary; an open
and a new connection must each end (answer or error) within the declared bound, never hang."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from .. import faults
from .shorten import _line


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
