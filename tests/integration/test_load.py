"""Load: the Locust runner against a real PostgreSQL, and the performance checks end to end.

One PostgreSQL major (the lowest of PGREADY_TEST_MAJORS / the installed ones): the load layer does not
depend on the server version, and load runs are the expensive part of the suite. Every run is short
(a few seconds), targets 127.0.0.1 and is bounded by the runner.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from pytest_pgready.workload.locustfiles import LoadError, builtin
from pytest_pgready.workload.runner import LoadSpec, run_load

pytestmark = pytest.mark.integration

SLEEP_LOCUSTFILE = """
from locust import task
from pytest_pgready.workload.user import PgUser

class SleepUser(PgUser):
    @task
    def sleep(self):
        self.sql("sleep", "SELECT pg_sleep(%s)", (float(self.spec["sleep_s"]),))
"""


def _load_bins() -> Any:
    from conftest import lowest_major

    return lowest_major()


def _major() -> str:
    return str(_load_bins().major)


@pytest.fixture(scope="module")
def load_cluster() -> Iterator[Any]:
    from pytest_pgready.cluster.local import provision_local
    from pytest_pgready.settings import build

    c = provision_local(build({}, None, None), bins=_load_bins(), replicas=0, pgbouncer=False, toxiproxy=False,
                        archive=False)
    yield c
    c.close()


def _locustfile(tmp_path: Path, text: str, name: str = "lf.py") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _locust_pids(token: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            st = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"locust" in cmd and token.encode() in cmd and st != "Z":
            out.append(int(entry))
    return out


# ------------------------------------------------------------------------------------------------ runner

def test_hdr_percentiles_agree_with_pg_stat_statements(load_cluster, tmp_path):
    """The same run seen from both ends. Each request is one execution of SELECT pg_sleep(0.004), which
    dominates its latency, so client and server times must agree: client p50 within [server mean - 0.3 ms,
    server mean + 1.5 ms] (loopback round trip and client overhead on a shared 2-core box); the fastest
    client request no faster than the fastest server execution; and every successful client request is
    one pg_stat_statements call: 0 <= calls - requests <= users (requests cut in flight at stop)."""
    users = 4
    with load_cluster.primary.connect() as conn:
        conn.execute("SELECT pg_stat_statements_reset()")
    res = run_load(LoadSpec(_locustfile(tmp_path, SLEEP_LOCUSTFILE), users=users, duration_s=3, warmup_s=1,
                            extra={"sleep_s": 0.004}), load_cluster.primary.dsn())
    with load_cluster.primary.connect() as conn:
        calls, mean_ms, min_ms = conn.execute(
            "SELECT calls, mean_exec_time, min_exec_time FROM pg_stat_statements "
            "WHERE query = 'SELECT pg_sleep($1)'").fetchone()
    lat = res.latency_ms
    assert res.err_total == 0 and res.ok > 300, res.evidence()
    assert 0 <= calls - res.ok_total <= users, (calls, res.ok_total)
    assert mean_ms - 0.3 <= lat["p50"] <= mean_ms + 1.5, (lat, mean_ms)
    assert lat["min"] >= min_ms * 0.999, (lat, min_ms)
    assert res.throughput_rps == pytest.approx(users / (mean_ms / 1000), rel=0.35)  # closed model: users / latency


def test_open_model_holds_its_rate_and_counts_from_the_schedule(load_cluster, tmp_path):
    """Below capacity the arrival rate is kept; above it, latency is counted from each request's scheduled
    start (coordinated omission corrected), so it grows far beyond the 50 ms service time."""
    lf = _locustfile(tmp_path, SLEEP_LOCUSTFILE)
    calm = run_load(LoadSpec(lf, users=4, duration_s=2.5, warmup_s=0.5, rate=20, extra={"sleep_s": 0.05}),
                    load_cluster.primary.dsn())
    assert calm.model == "open" and calm.throughput_rps == pytest.approx(20, rel=0.2), calm.evidence()
    assert calm.latency_ms["p95"] < 150, calm.latency_ms
    lag = calm.evidence()["harness_start_lag_ms"]  # how late on-time arrivals went out: reported, not hidden
    assert 0 <= lag["p50"] <= lag["p99"] <= lag["max"], lag
    # 2 users can serve ~40 req/s of 50 ms requests; 80/s arrive: the queue grows all run long
    swamped = run_load(LoadSpec(lf, users=2, duration_s=2.5, warmup_s=0.5, rate=80, extra={"sleep_s": 0.05}),
                       load_cluster.primary.dsn())
    assert swamped.throughput_rps < 50
    assert swamped.latency_ms["p99"] > 500, swamped.latency_ms  # a closed model would report ~50 ms here


def test_open_model_arrivals_go_out_on_time(load_cluster):
    """An arrival goes on the wire within tens of µs of its schedule (arrivals.py's timerfd), not 0-1 ms late
    at gevent's millisecond granularity; the start lag is reported, so it can be checked."""
    res = run_load(LoadSpec(builtin("select1"), users=4, duration_s=2, warmup_s=0.5, rate=100),
                   load_cluster.primary.dsn())
    lag = res.evidence()["harness_start_lag_ms"]
    assert res.err_total == 0 and res.throughput_rps == pytest.approx(100, rel=0.2), res.evidence()
    assert lag["p50"] < 0.3, lag  # ~0.1 ms with the timerfd, ~0.6-0.8 ms with gevent.sleep()


LONE_WAIT_LOCUSTFILE = """
import json, time
import gevent, psycopg
from locust import task
from locust.exception import RescheduleTask, StopUser
from pytest_pgready.workload import user as U
from pytest_pgready.workload.user import PgUser

class LoneUser(PgUser):
    @task
    def probe(self):
        out = {"budget_s": U.ALONE_WAIT_S}
        fired = []
        due = time.perf_counter() + 0.005
        gevent.spawn_later(0.005, lambda: fired.append(time.perf_counter()))
        self.sql("slow", "SELECT pg_sleep(0.2)")  # alone in flight: blocks for the budget at most, then yields
        out["timer_late_s"] = fired[0] - due if fired else None
        with self.transaction("tx") as cur:  # the cursor path (psycopg's wait replaced by pgready's)
            cur.execute("SELECT 1")
        try:
            self.sql("div", "SELECT 1 / 0")
        except RescheduleTask:
            pass
        out["in_flight_after_error"] = U._in_flight
        other = psycopg.connect(U._read_dsn(), autocommit=True)
        t0 = time.perf_counter()
        g = gevent.spawn(other.execute, "SELECT pg_sleep(0.3)")
        gevent.sleep(0)  # the other request is in flight first: this one must not block
        self.sql("pair", "SELECT pg_sleep(0.3)")
        g.get(timeout=5)
        out["pair_s"] = time.perf_counter() - t0
        other.close()
        out["in_flight_at_end"] = U._in_flight
        self.sql("warm", "SELECT 1")  # prepared now: the request below is one round trip, one wait phase
        before = U._hub_waits  # a greenlet ready to run: this request must not keep it waiting
        gevent.spawn(lambda: None)
        self.sql("queued", "SELECT 1")
        out["hub_waits_with_one_queued"] = U._hub_waits - before
        out["waited_alone_of_5"] = 0  # nothing else to run: a fast answer is waited for alone
        for _ in range(5):
            before = U._hub_waits
            self.sql("lone", "SELECT 1")
            out["waited_alone_of_5"] += U._hub_waits == before
        with open(self.spec["out"], "w") as f:
            json.dump(out, f)
        raise StopUser()
"""


def test_a_lone_request_blocks_the_process_for_the_budget_at_most(load_cluster, tmp_path):
    """A request alone in flight waits in the kernel, not through gevent's hub: bounded by ALONE_WAIT_S
    (a timer due meanwhile fires about that late, not after the 200 ms query), never taken when another
    request is in flight (two 300 ms queries overlap) or a greenlet is ready to run, and the in-flight
    count survives errors."""
    import json

    out = tmp_path / "out.json"
    run_load(LoadSpec(_locustfile(tmp_path, LONE_WAIT_LOCUSTFILE), users=1, duration_s=3, warmup_s=0,
                      extra={"out": str(out)}), load_cluster.primary.dsn())
    got = json.loads(out.read_text())
    assert got["budget_s"] <= 0.005 and got["timer_late_s"] is not None, got
    assert got["timer_late_s"] < 0.1, got  # blocked for the whole query would be ~0.195 s
    assert got["pair_s"] < 0.5, got  # serialised would be >= 0.6 s
    assert got["in_flight_after_error"] == 0 and got["in_flight_at_end"] == 0, got
    assert got["hub_waits_with_one_queued"] == 1 and got["waited_alone_of_5"] >= 1, got


FAIR_LOCUSTFILE = """
import json
from locust import constant, events, task
from pytest_pgready.workload.user import PgUser

counts = {}

paced = {"n": 0}

class FairUser(PgUser):
    fixed_count = 4

    @task
    def one(self):
        self.sql("one", "SELECT 1")
        counts[id(self)] = counts.get(id(self), 0) + 1

class PacedUser(PgUser):  # sleeps on a timer between its tasks: only the hub wakes it
    fixed_count = 1
    wait_time = constant(0.01)

    @task
    def tick(self):
        paced["n"] += 1

@events.test_stop.add_listener
def _out(environment, **_):
    from pytest_pgready.workload import user
    with open(json.loads(environment.parsed_options.pgready_spec)["out"], "w") as f:
        json.dump({"counts": sorted(counts.values()), "hub_waits": user._hub_waits, "paced": paced["n"]}, f)
"""


def test_closed_model_users_share_the_process(load_cluster, tmp_path):
    """A user whose fast query was answered while it waited alone has not let anyone else run: it must
    yield before its next task, or in the closed model one user keeps the process to itself until a
    query outlasts ALONE_WAIT_S (requests then go one at a time, nearly all waiting alone). Four busy
    users are never alone (the second run is the one that fails without the yield: a user asleep on a
    timer got 6 ticks of ~200)."""
    import json

    out = tmp_path / "counts.json"
    run_load(LoadSpec(_locustfile(tmp_path, FAIR_LOCUSTFILE), users=5, duration_s=2, warmup_s=0,
                      extra={"out": str(out)}), load_cluster.primary.dsn())
    got = json.loads(out.read_text())
    counts = got["counts"]
    assert len(counts) == 4 and counts[0] >= 0.2 * counts[-1], got
    assert got["hub_waits"] >= 0.5 * sum(counts), got  # mostly several in flight at once
    # One closed-model user beside one asleep on a timer: the first is alone in flight whenever the other
    # sleeps, so its answers come in the kernel, and it must still let the hub run the other's timer
    run_load(LoadSpec(_locustfile(tmp_path, FAIR_LOCUSTFILE.replace("fixed_count = 4", "fixed_count = 1")),
                      users=2, duration_s=2, warmup_s=0, extra={"out": str(out)}), load_cluster.primary.dsn())
    got = json.loads(out.read_text())
    assert len(got["counts"]) == 1 and got["paced"] >= 50, got  # ~200 ticks of 10 ms in 2 s


LOOP_LOCUSTFILE = """
import json
import gevent
from locust import TaskSet, constant, events, task
from pytest_pgready.workload.user import PgUser

seen = {"states_while_paced_waits": [], "stopping_runs": 0, "stopping_on_stop": 0, "late_runs": 0}

class Nested(TaskSet):
    @task
    def inner(self):
        self.user.sql("nested", "SELECT 1")

class PacedUser(PgUser):
    weight = 1
    wait_time = constant(0.1)

    @task
    def paced(self):
        self.sql("paced", "SELECT 1")
        gevent.spawn_later(0.05, lambda: seen["states_while_paced_waits"].append(self._state))

class StoppingUser(PgUser):  # asked to stop gracefully during its task: finishes it, then stops
    weight = 1

    @task
    def once(self):
        seen["stopping_runs"] += 1
        self.sql("once", "SELECT 1")
        self._state = "stopping"

    def on_stop(self):
        seen["stopping_on_stop"] += 1
        super().on_stop()

class LateStopUser(PgUser):  # the same request arriving during the wait after its task: stops after it
    weight = 1
    wait_time = constant(0.2)

    @task
    def late(self):
        seen["late_runs"] += 1
        self.sql("late", "SELECT 1")
        gevent.spawn_later(0.1, setattr, self, "_state", "stopping")

class NestedUser(PgUser):
    weight = 1
    tasks = [Nested]

class WeightedUser(PgUser):
    weight = 1

    @task(3)
    def often(self):
        self.sql("often", "SELECT 1")

    @task(1)
    def rarely(self):
        self.sql("rarely", "SELECT 1")

@events.test_stop.add_listener
def _out(environment, **_):
    with open(json.loads(environment.parsed_options.pgready_spec)["out"], "w") as f:
        json.dump(seen, f)
"""


def test_task_loop_shortcuts_keep_locust_semantics(load_cluster, tmp_path):
    """PgUser shortens Locust's task loop (its own wait_time called directly, a single task without a
    random choice, a function task called without the TaskSet test, the wait with the user at hand): a
    user's own wait_time still paces it and marks it waiting, a user asked to stop during its task
    finishes it and stops, a nested TaskSet still runs, weights still hold."""
    import json

    out = tmp_path / "seen.json"
    res = run_load(LoadSpec(_locustfile(tmp_path, LOOP_LOCUSTFILE), users=5, duration_s=2, warmup_s=0,
                            extra={"out": str(out)}), load_cluster.primary.dsn())
    n = {k: v["ok"] for k, v in res.labels.items()}
    seen = json.loads(out.read_text())
    assert seen["stopping_runs"] == 1 and seen["stopping_on_stop"] == 1 and n.get("once") == 1, (seen, n)
    assert seen["late_runs"] == 1, seen
    assert seen["states_while_paced_waits"] and set(seen["states_while_paced_waits"]) == {"waiting"}, seen
    assert res.err_total == 0 and set(n) == {"paced", "nested", "often", "rarely", "once", "late"}, n
    assert 8 <= n["paced"] <= 25, n  # constant(0.1) for ~2 s
    assert n["nested"] > 200, n
    assert 2 <= n["often"] / n["rarely"] <= 4.5, n


def test_master_and_two_local_workers(load_cluster):
    res = run_load(LoadSpec(builtin("select1"), users=4, duration_s=2, warmup_s=0.5, workers=2),
                   load_cluster.primary.dsn())
    assert res.workers == 2 and res.ok > 100 and res.err == 0, res.evidence()


def test_no_process_outlives_the_run_and_the_dsn_stays_hidden(load_cluster):
    token = secrets.token_hex(6)
    password = load_cluster.password
    seen: dict[str, Any] = {}

    def inspect(line: str) -> None:
        for pid in _locust_pids(token):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            env = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
            seen.setdefault("pids", set()).add(pid)
            try:
                seen.setdefault("sessions", {})[pid] = os.getsid(pid)
            except ProcessLookupError:
                pass
            seen["cmd_has_password"] = seen.get("cmd_has_password", False) or password in cmd
            seen["env_has_password"] = seen.get("env_has_password", False) or any(password in e for e in env)
            dsn_file = next((e.split("=", 1)[1] for e in env if e.startswith("PGREADY_DSN_FILE=")), None)
            if dsn_file and os.path.exists(dsn_file):
                seen["mode"] = stat.S_IMODE(os.stat(dsn_file).st_mode)
        seen.setdefault("lines", []).append(line)

    res = run_load(LoadSpec(builtin("select1"), users=2, duration_s=2.5, warmup_s=0.5, processes=2,
                            extra={"token": token}),
                   load_cluster.primary.dsn(), progress=inspect, progress_every=1.0)
    assert res.ok > 0
    assert seen.get("pids"), "no locust process seen during the run"
    assert seen["cmd_has_password"] is False and seen["env_has_password"] is False
    assert seen.get("mode") == 0o600
    assert all(line.startswith("pgready load:") for line in seen["lines"])
    assert _locust_pids(token) == []
    # the master and both forked workers each lead a session, as every backend does (own_session.py)
    sessions = seen.get("sessions", {})
    assert len(sessions) == 3 and all(sid == pid for pid, sid in sessions.items()), sessions


def test_a_forked_worker_dies_with_its_master(load_cluster):
    """Workers in sessions of their own are out of reach of the master's process group: when the master
    is killed outright they must go at once, by themselves (PR_SET_PDEATHSIG), not at the runner's cleanup."""
    token = secrets.token_hex(6)
    seen: dict[str, Any] = {}

    def kill_master(_line: str) -> None:
        pids = _locust_pids(token)
        if len(pids) < 3 or "workers" in seen:
            return
        master = next(p for p in pids
                      if int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) not in pids)
        seen["workers"] = [p for p in pids if p != master]
        os.kill(master, signal.SIGKILL)
        deadline = time.monotonic() + 10  # a loaded CI box; the runner's own cleanup comes only after this
        while time.monotonic() < deadline and any(p in _locust_pids(token) for p in seen["workers"]):
            time.sleep(0.05)
        seen["left"] = [p for p in seen["workers"] if p in _locust_pids(token)]

    with pytest.raises(LoadError, match="status -9"):
        run_load(LoadSpec(builtin("select1"), users=2, duration_s=30, warmup_s=0, processes=2, extra={"token": token}),
                 load_cluster.primary.dsn(), progress=kill_master, progress_every=0.5)
    assert len(seen.get("workers", [])) == 2 and seen["left"] == [], seen
    assert _locust_pids(token) == []


PGBENCH_CHILD = """
import json, os, subprocess, sys
from pytest_pgready.cluster.model import Endpoint
from pytest_pgready.workload.pgbench import run_pgbench

cfg = json.loads(sys.argv[1])

class Primary:
    endpoint = Endpoint(cfg["host"], cfg["port"], cfg["user"], None, cfg["dbname"])

class Cluster:
    primary = Primary

    @staticmethod
    def run_tool(argv, timeout, cwd):
        print("RUNNING", cwd, flush=True)
        with open(cfg["log"], "w") as log:  # not a pipe to this process: it is SIGKILLed while pgbench runs
            subprocess.run([cfg["pgbench"], *argv[1:]], cwd=cwd, env={**os.environ, **cfg["env"]},
                           stdout=log, stderr=log, timeout=timeout)
        raise SystemExit("pgbench ended before the test killed this process")

run_pgbench(Cluster, "SELECT pg_sleep(0.01);\\n", clients=1, seconds=120)
"""


def test_pgbench_of_a_killed_run_is_reaped_by_the_next(load_cluster, tmp_path):
    """pgbench works in a run dir of its own: SIGKILL the process that started it and the next run's
    reaper kills the pgbench still running in it and removes the dir (a temporary dir stayed behind)."""
    import fcntl
    import json
    import subprocess
    import sys

    from pytest_pgready.cluster import sandbox

    ep = load_cluster.primary.endpoint
    log = tmp_path / "pgbench.log"
    cfg = {"host": ep.host, "port": ep.port, "user": ep.user, "dbname": ep.dbname, "env": load_cluster.tool_env(),
           "pgbench": str(load_cluster.bin.tool("pgbench")), "log": str(log)}
    child = subprocess.Popen([sys.executable, "-c", PGBENCH_CHILD, json.dumps(cfg)], stdout=subprocess.PIPE,
                             text=True)
    d = None
    try:
        line = child.stdout.readline()  # EOF (no hang) if the child fails before it starts pgbench
        assert line.startswith("RUNNING "), line
        d = Path(line.split(" ", 1)[1].strip())
        def connected() -> bool:  # pgbench itself (not the fork before its exec) has its session open
            with load_cluster.primary.connect() as conn:
                n = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench'")
                return n.fetchone()[0] > 0 and bool(sandbox.processes_under(d))

        deadline = time.monotonic() + 30
        while not connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert connected(), f"pgbench did not start: {log.read_text() if log.exists() else 'no output'}"
        # the reaper's lock keeps other xdist workers' reapers out while the leftovers are looked at
        with open(sandbox.base_dir() / "reaper.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            child.kill()
            child.wait(10)
            # SIGKILL ran no cleanup: pgbench runs on
            assert d.is_dir() and sandbox.processes_under(d), f"pgbench ended: {log.read_text()!r}"
        sandbox.reap()  # this one, or another worker's that came first
        assert not d.exists() and not sandbox.processes_under(d)
    finally:
        child.kill()
        child.wait(10)
        if d is not None:
            sandbox.remove_dir(d)  # whatever failed above, no pgbench outlives the test


def test_keyboard_interrupt_kills_the_whole_process_group(load_cluster):
    token = secrets.token_hex(6)

    def interrupt(_line: str) -> None:
        if _locust_pids(token):
            raise KeyboardInterrupt

    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_load(LoadSpec(builtin("select1"), users=2, duration_s=30, warmup_s=0, processes=2, extra={"token": token}),
                 load_cluster.primary.dsn(), progress=interrupt, progress_every=0.5)
    assert time.monotonic() - t < 20
    assert _locust_pids(token) == []


def test_request_count_bounds_the_run(load_cluster):
    res = run_load(LoadSpec(builtin("select1"), users=2, duration_s=2, warmup_s=0, max_requests=50),
                   load_cluster.primary.dsn())
    assert 50 <= res.ok_total + res.err_total <= 51  # the two users stop at the bound (one may be in flight)


SAME_AS_CURSOR_LOCUSTFILE = r'''
import json
from decimal import Decimal
from locust import events, task
from locust.exception import RescheduleTask
from psycopg.rows import dict_row, tuple_row
from pytest_pgready.workload.user import PgUser

CASES = [
    ("tuple", "SELECT %s::int + 1, %s::text, %s::text", (41, "x", None)),
    ("dict", "SELECT %(a)s::int * 2, %(a)s::int", {"a": 21}),
    ("no params", "SELECT 'a%%b' || 'c', 2", None),
    ("rows", "SELECT g, g::text FROM generate_series(1, %s) g", (50,)),
    ("types", "SELECT %s::numeric, %s::bytea, '{\"k\": [1, 2]}'::jsonb, '2025-01-02'::date", (Decimal("1.5"), b"\x00\x01")),
    ("ddl", "CREATE TEMP TABLE IF NOT EXISTS pgready_t (x int)", None),
    ("dml", "INSERT INTO pgready_t VALUES (%s) RETURNING x, x * 2", (5,)),
    ("empty", "SELECT 1 WHERE false", None),
    # one statement, parameters of different sizes: psycopg sends int2/int4/int8/numeric, each prepared apart
    ("int2", "SELECT %s + 1, pg_typeof(%s)::text", (5, 5)),
    ("int4", "SELECT %s + 1, pg_typeof(%s)::text", (40000, 40000)),
    ("int8", "SELECT %s + 1, pg_typeof(%s)::text", (2**40, 2**40)),
    ("numeric", "SELECT %s + 1, pg_typeof(%s)::text", (2**70, 2**70)),
    ("list", "SELECT %s + 1, pg_typeof(%s)::text", [7, 8]),
    ("big", "SELECT length(%s)", ("x" * 20_000_000,)),  # more than the socket takes at once: sent in parts
]
state = {"done": False}


class CheckUser(PgUser):
    @task
    def check(self):
        if state["done"]:
            self.sql("select1", "SELECT 1")
            return
        state["done"] = True
        out = {}
        protocol = self.spec["protocol"]
        cases = CASES + ([("multi", "SELECT 1; SELECT 2", None)] if protocol == "simple" else [])
        for name, q, p in cases:
            # three times: converted, then bound again, then sent by sql()'s shortest path (_Hot); int2 to
            # numeric share one statement, so each of them also finds it prepared for other types
            fast = [self.sql(name, q, p) for _ in range(3)]
            with self.conn.cursor() as cur:
                cur.execute(q, p)
                ref = cur.fetchall() if cur.description is not None else None
            out[name] = [repr(fast), repr([ref] * 3)]
        hot = {q for _, q, p in CASES if type(p) is tuple} if protocol == "prepared" else set()
        out["shortest path used"] = [repr(sorted(self._stmts.hot)), repr(sorted(hot))]  # prepared protocol only
        if protocol == "prepared":  # the shortest path knows the statement under each of its four types
            out["types kept"] = [repr(len(self._stmts.hot[CASES[8][1]].names)), "4"]
        out["fetch=False"] = [repr(self.sql("nofetch", "SELECT 1", fetch=False)), "None"]
        heard = []
        self.conn.add_notify_handler(lambda n: heard.append(n.payload))
        self.sql("listen", "LISTEN pgready_ch")
        self.sql("notify", "NOTIFY pgready_ch, 'x'")  # delivered to the connection's handlers, as by a cursor
        out["notify"] = [repr(heard), repr(["x"])]
        try:
            self.sql("arity", CASES[0][1], (1, 2))
            out["arity"] = ["no error", "error"]
        except RescheduleTask:
            pass
        try:
            self.sql("div", "SELECT 1 / %s", (0,))
            out["div"] = ["no error", "error"]
        except RescheduleTask:
            pass
        out["after error"] = [repr(self.sql("tuple", CASES[0][1], CASES[0][2])), repr([(42, "x", None)])]
        self.sql("deallocate", "DEALLOCATE ALL")  # our prepared statements are gone: prepared again, no error
        out["after deallocate"] = [repr(self.sql("tuple", CASES[0][1], CASES[0][2])), repr([(42, "x", None)])]
        with self.conn.cursor() as cur:  # behind the fast path's back this time: it finds out and prepares again
            cur.execute("DEALLOCATE ALL")
        out["after deallocate elsewhere"] = [repr(self.sql("tuple", CASES[0][1], CASES[0][2])),
                                             repr([(42, "x", None)])]
        self.sql("ddl", "CREATE TEMP TABLE pgready_t2 AS SELECT 1 AS x")
        out["before alter"] = [repr(self.sql("star", "SELECT * FROM pgready_t2")), repr([(1,)])]
        self.sql("ddl", "ALTER TABLE pgready_t2 ADD COLUMN y int DEFAULT 2")  # the prepared SELECT * is stale
        out["after alter"] = [repr(self.sql("star", "SELECT * FROM pgready_t2")), repr([(1, 2)])]
        self.conn.row_factory = dict_row  # not the plain case: a cursor runs it, with the user's rows
        out["dict rows"] = [repr(self.sql("dictrow", "SELECT 7 AS seven")), repr([{"seven": 7}])]
        self.conn.row_factory = tuple_row
        out["fast path used"] = [repr(CASES[0][1] in self._stmts.queries), "True"]
        with open(self.spec["out"], "w") as f:
            json.dump(out, f)


@events.test_stop.add_listener
def _stats(environment, **_):  # after pgready's own test_stop: the last batch is in Locust's statistics
    t = environment.stats.total
    with open(json.loads(environment.parsed_options.pgready_spec)["stats_out"], "w") as f:
        json.dump({"requests": t.num_requests, "failures": t.num_failures,
                   "select1": environment.stats.get("select1", "sql").num_requests,
                   "div_failures": environment.stats.get("div", "sql").num_failures}, f)
'''


@pytest.mark.parametrize("protocol", ["prepared", "extended", "simple"])
def test_sql_fast_path_answers_like_a_cursor_and_locust_sees_every_request(load_cluster, tmp_path, protocol):
    """PgUser.sql() runs plain statements without psycopg's cursor machinery: the rows, the errors and the
    statement cache must be those of a cursor, in every protocol; successes reach Locust's statistics in
    per-second batches and failures one by one, so Locust's totals equal pgready's."""
    out, stats_out = tmp_path / "out.json", tmp_path / "stats.json"
    res = run_load(LoadSpec(_locustfile(tmp_path, SAME_AS_CURSOR_LOCUSTFILE), users=1, duration_s=2, warmup_s=0,
                            protocol=protocol, extra={"out": str(out), "stats_out": str(stats_out)}),
                   load_cluster.primary.dsn())
    import json

    got = json.loads(out.read_text())
    assert len(got) >= 23 and got["fast path used"] == ["True", "True"], got
    assert {k: v for k, v in got.items() if v[0] != v[1]} == {}, got
    assert res.err_total == 2 and any("div: DivisionByZero: division by zero" in m for m in res.errors), res.errors
    assert any("arity: ProgrammingError: the query has 3 placeholders but 2" in m for m in res.errors), res.errors
    stats = json.loads(stats_out.read_text())
    assert stats["requests"] == res.ok_total + res.err_total and stats["failures"] == res.err_total == 2, (stats, res)
    assert stats["div_failures"] == 1 and stats["select1"] > 100


SLOW_AFTER_ANSWER_LOCUSTFILE = r'''
import time
from locust import task
from pytest_pgready.workload.user import PgUser


class SlowHandlerUser(PgUser):
    def on_start(self):
        super().on_start()
        self.conn.add_notify_handler(lambda n: time.sleep(0.15))  # the application's time, after the answer
        self.sql("listen", "LISTEN pgready_slow")

    @task
    def notify(self):
        self.sql("hot", "SELECT pg_notify('pgready_slow', %s)", ("x",))  # sql()'s shortest path after once
        self.sql("plain", "NOTIFY pgready_slow, 'y'")  # bind() and run()
'''


def test_the_clock_stops_when_the_answer_is_in(load_cluster, tmp_path):
    """A request is timed until libpq holds its whole answer: what the client does with it afterwards
    (here a notification handler that takes 150 ms, run as results() returns) is not the database's time,
    as pgbench's clock does not run while it processes a result either."""
    res = run_load(LoadSpec(_locustfile(tmp_path, SLOW_AFTER_ANSWER_LOCUSTFILE), users=1, duration_s=2,
                            warmup_s=0), load_cluster.primary.dsn())
    assert res.err_total == 0, res.errors
    for label in ("hot", "plain"):
        got = res.labels[label]
        assert got["ok"] >= 3 and got["latency_ms"]["max"] < 100, (label, got)  # the handler ran: ~0.3 s a task
    assert res.ok_total <= 2 * (2 / 0.3) + 3, res.ok_total


def test_locustfile_without_user_class_is_one_line(load_cluster, tmp_path):
    lf = _locustfile(tmp_path, "import locust\n\nclass NotAUser:\n    pass\n")
    with pytest.raises(LoadError) as e:
        run_load(LoadSpec(lf, users=1, duration_s=1, warmup_s=0), load_cluster.primary.dsn())
    assert "no User class" in e.value.line() and "\n" not in e.value.line()


def test_blocking_psycopg_wait_is_refused(load_cluster, monkeypatch):
    """psycopg forced to its C wait function would block every gevent user of a worker: refuse to run."""
    monkeypatch.setenv("PSYCOPG_WAIT_FUNC", "wait_c")
    with pytest.raises(LoadError) as e:
        run_load(LoadSpec(builtin("select1"), users=1, duration_s=1, warmup_s=0), load_cluster.primary.dsn())
    assert "blocking wait function" in e.value.line() and "\n" not in e.value.line()


def test_app_workload_runs_on_the_vendhub_example(load_cluster):
    """load/app.py drives examples/workload.sql W1-W7 on the seeded example without a single error."""
    examples = Path(__file__).resolve().parents[2] / "examples"
    ep = load_cluster.primary.endpoint
    with load_cluster.primary.connect(dbname="postgres") as conn:
        conn.execute("DROP DATABASE IF EXISTS vendhub WITH (FORCE)")
        conn.execute("CREATE DATABASE vendhub")
    for f, extra in (("schema.sql", []), ("roles.sql", ["-v", "vend_app_password=pgready-test"]),
                     ("seed.sql", ["-v", "scale=0.1"])):
        r = load_cluster.run_tool(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *extra, "-h", ep.host, "-p",
                                   str(ep.port), "-U", ep.user, "-d", "vendhub", "-f", str(examples / f)], timeout=300)
        assert r.returncode == 0, (f, r.stderr[-500:])
    res = run_load(LoadSpec(builtin("app"), users=4, duration_s=3, warmup_s=0.5),
                   load_cluster.primary.dsn(dbname="vendhub"))
    assert res.err_total == 0, res.evidence()["error_messages"]
    assert {k.split()[0] for k in res.labels} == {"W1", "W2", "W3", "W4", "W5", "W6", "W7"}, res.labels
    with load_cluster.primary.connect(dbname="vendhub") as conn:
        assert conn.execute("SELECT count(*) FROM vend.payments WHERE provider_ref LIKE 'psp_pgready_%'").fetchone()[0] > 0


# ------------------------------------------------------------------------------------------------ checks

NO_LOCUST_PLUGIN = """
import sys, json, os
def pytest_sessionfinish(session):
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("locust", "gevent"))
    with open(os.environ["PGREADY_MODULES_OUT"], "w") as f:
        json.dump(bad, f)
"""


def _run(run_pgready: Any, tmp_path: Path, *args: str, config: str) -> Any:
    (tmp_path / "pgready_nolocust.py").write_text(NO_LOCUST_PLUGIN)
    out = tmp_path / "modules.json"
    env = {"PYTHONPATH": str(tmp_path), "PGREADY_MODULES_OUT": str(out)}
    run = run_pgready("--pgready-suite", "performance", "--pgready-pg-version", _major(), "-p", "pgready_nolocust",
                      *args, config=config, env=env, timeout=300)
    import json

    assert json.loads(out.read_text()) == [], "locust/gevent imported into the pytest process"
    return run


BASE = """
load_duration_s = 4
load_warmup_s = 1
calibrate_seconds = 2
load_processes = 1
seqscan_min_rows = 1000
perf004_rounds = 20
"""


def test_performance_checks_pass(run_pgready, tmp_path):
    init = tmp_path / "init.sql"
    init.write_text("CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL);\n"
                    "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1, 5000) g;\nANALYZE items;\n")
    run = _run(run_pgready, tmp_path, "--pgready-init-sql", str(init), config=BASE + """
workload = "tpcb"
target_rps = 20
critical_queries = ["SELECT sku FROM items WHERE id = 42", "SELECT sku FROM items WHERE id = $1"]
""")
    for cid in ("PERF001", "PERF002", "PERF003", "PERF004", "PERF005", "PERF006", "REP002"):
        assert run.status(cid) == "pass", (cid, run.check(cid)["summary"], run.output[-2000:])
    m = run.report["metrics"]
    assert set(m["latency_ms"]) >= {"p50", "p95", "p99", "max"} and m["latency_ms"]["p95"] > 0
    assert sum(n for _, n in m["latency_histogram_us"]) > 100
    assert m["throughput_rps"] > 20 and m["error_rate"] == 0 and m["harness_ceiling_rps"] > 20
    assert len(m["replication_lag_series"]) >= 3 and all(len(p) == 3 for p in m["replication_lag_series"])
    assert run.check("REP002")["evidence"]["wal_bytes_during_load"] > 0
    parts = {p["nodeid"].rsplit("[", 1)[-1]: p["status"] for p in run.check("PERF004")["evidence"]["parts"]}
    assert parts == {"q1]": "pass", "q2]": "na"}, parts  # a $1 query is explained (PERF003) but not executed
    assert "pgready load:" in run.output  # progress during the run
    assert "password=" not in run.output.replace("password=********", "")


def test_performance_checks_fail_when_broken(run_pgready, tmp_path):
    """Broken on purpose, each in its own way: a 3 s delayed standby, 10 % failing requests, an SLO below
    any real latency, an unindexed critical query, a p95 budget of 1 µs, and a slow statement run twice."""
    init = tmp_path / "init.sql"
    init.write_text("CREATE TABLE items (id bigint PRIMARY KEY, sku text NOT NULL);\n"
                    "INSERT INTO items SELECT g, 'sku' || g FROM generate_series(1, 5000) g;\nANALYZE items;\n"
                    "CREATE TABLE ledger (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n int);\n"
                    "SELECT pg_sleep(0.12);\nSELECT pg_sleep(0.12);\n")
    conf = tmp_path / "postgresql.conf"
    conf.write_text("recovery_min_apply_delay = '3s'\n")
    lf = _locustfile(tmp_path, """
import random
from locust import task
from pytest_pgready.workload.user import PgUser

class Flaky(PgUser):
    @task(9)
    def write(self):
        self.sql("insert", "INSERT INTO ledger (n) VALUES (%s)", (random.randint(1, 9),))

    @task(1)
    def broken(self):
        self.sql("broken", "SELECT 1 / 0")
""", "flaky.py")
    run = _run(run_pgready, tmp_path, "--pgready-init-sql", str(init), "--pgready-postgresql-conf", str(conf),
               "--pgready-locustfile", str(lf), config=BASE + """
target_rps = 5
slo_p95_ms = 0.001
slo_p99_ms = 0.002
max_replay_lag_seconds = 1
perf004_p95_ms = 0.001
critical_queries = ["SELECT id FROM items WHERE sku = 'sku42'", "SELECT id FROM items WHERE sku = $1"]
""")
    for cid in ("PERF001", "PERF002", "PERF003", "PERF004", "PERF005", "REP002"):
        assert run.status(cid) == "fail", (cid, run.check(cid)["summary"], run.output[-2000:])
    assert run.status("PERF006") == "pass"
    ev = {cid: run.check(cid)["evidence"] for cid in ("PERF001", "PERF002", "PERF003", "PERF004", "PERF005", "REP002")}
    assert any("p95" in o and "SLO" in o for o in ev["PERF001"]["objects"])
    assert any("error rate" in o for o in ev["PERF002"]["objects"])
    assert any("division by zero" in o for o in ev["PERF002"]["objects"])
    assert any(o.startswith("public.items") and "in query 1, 2" in o for o in ev["PERF003"]["objects"]), ev["PERF003"]
    assert any("items WHERE sku" in o for o in ev["PERF004"]["objects"])
    assert any("pg_sleep" in o for o in ev["PERF005"]["objects"])
    assert ev["REP002"]["objects"] and max(p[1] for p in run.report["metrics"]["replication_lag_series"]) > 1


def test_harness_bound_target_makes_latency_and_throughput_na(run_pgready, tmp_path):
    """A target far above the harness ceiling: PERF006 fails, PERF001/PERF002 are na(harness-bound) — not a
    false fail. The same run brings a locustfile with a syntax error: the load's checks error in one line."""
    lf = _locustfile(tmp_path, "from locust import task\nclass U(:\n    pass\n", "broken.py")
    run = _run(run_pgready, tmp_path, "--pgready-locustfile", str(lf), "-k", "perf001 or perf002 or perf006 or rep002",
               config=BASE + "target_rps = 10000000\nreplicas = 0\n")
    assert run.status("PERF006") == "fail" and "bottleneck" in run.check("PERF006")["summary"]
    for cid in ("PERF001", "PERF002"):
        assert run.status(cid) == "na" and run.check(cid)["summary"].startswith("harness-bound"), run.check(cid)
    assert run.report["metrics"]["harness_ceiling_rps"] > 0
    rep = run.check("REP002")
    assert rep["status"] == "error" and "broken.py line 2: SyntaxError" in rep["summary"]
    assert "\n" not in rep["summary"]


@pytest.mark.parametrize("config, needle", [
    ("slo_p95_ms = 300\nslo_p99_ms = 200\n", "slo_p95_ms is above slo_p99_ms"),
    ("slo_p95_ms = -5\n", "slo_p95_ms = -5 is out of range"),
    ("max_error_rate = 2\n", "max_error_rate = 2 is out of range"),
    ("load_protocol = 'binary'\n", "load_protocol = 'binary' is not one of"),
])
def test_invalid_slo_is_a_one_line_usage_error(run_pgready, config, needle):
    run = run_pgready("--pgready-suite", "performance", config=config, timeout=120)
    assert run.exit_code == 4 and run.report is None
    lines = [ln for ln in run.output.splitlines() if needle in ln]
    assert len(lines) == 1 and lines[0].startswith(("pgready:", "ERROR: pgready:")), run.output[-1500:]
    assert "Traceback" not in run.output
