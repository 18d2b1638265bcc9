"""One Settings object from CLI + ini + pyproject + a TOML file, validated in one place.

Every key has a spec (type, default, allowed range). Unknown keys and out-of-range values
are errors, never silently ignored: a typo in a threshold must not turn a check green.
Precedence, lowest first: defaults, ini (`pgready_<key>`), `[tool.pgready]` of the
rootdir's pyproject.toml, `--pgready-config FILE`, command-line options.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import difflib
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from .catalog import CATALOG, CATEGORIES
from .errors import PgReadyUsageError


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # str | int | float | bool | list | path | pathlist | choice | suites | table
    default: Any = None
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    cli: bool = False  # also a --pgready-<name> command-line option


def _k(name: str, type: str, default: Any = None, help: str = "", **kw: Any) -> Key:
    return Key(name, type, default, help, **kw)


# The options of DESIGN.md §1 (cli=True) and the thresholds of CHECKS.md.
# Each area keeps its keys together; add new keys in the section of the area that reads them.
SPEC: tuple[Key, ...] = (
    # --- run options (DESIGN §1) ---
    _k("dsn", "str", None, "an existing primary to test; absent: provision an embedded local cluster", cli=True),
    _k("replica_dsn", "list", [], "a replica of an existing topology (repeatable)", cli=True),
    _k("pgbouncer_dsn", "str", None, "the PgBouncer in front of an existing primary", cli=True),
    _k("provider", "choice", None, "where the cluster comes from (default: external with a DSN, else local)",
       choices=("local", "docker", "external"), cli=True),
    _k("suite", "suites", list(CATEGORIES), "comma list of suites to run", cli=True),
    _k("report_dir", "path", "pgready-report", "where readiness.json/html/md are written", cli=True),
    _k("fail_under", "float", None, "CI gate: minimum score (0-100)", min=0, max=100, cli=True),
    _k("min_coverage", "float", 0.8, "CI gate: minimum weighted share of evaluated checks", min=0, max=1),
    _k("allow_destructive", "bool", False, "permit writes, restarts, load and faults against an external target", cli=True),
    _k("init_sql", "pathlist", [], "SQL applied to a provisioned cluster before the suites (repeatable)", cli=True),
    _k("postgresql_conf", "path", None, "your postgresql.conf: the provisioned cluster runs with it", cli=True),
    _k("pgbouncer_ini", "path", None, "your pgbouncer.ini: the provisioned PgBouncer runs with it", cli=True),
    _k("config", "path", None, "a TOML file of thresholds, weights and waivers", cli=True),
    _k("pg_bin", "path", None, "directory holding the PostgreSQL binaries to provision with", cli=True),
    _k("pg_version", "int", None, "prefer this PostgreSQL major when several are installed", min=13, max=99, cli=True),
    _k("paths", "pathlist", [], "extra directories of your own @pytest.mark.pgready checks"),
    _k("locustfile", "path", None, "your own Locust workload (a pgready PgUser subclass)", cli=True),
    _k("replicas", "int", 1, "replicas in the embedded cluster", min=0, max=5),
    _k("connect_timeout", "int", 10, "seconds to wait for a connection", min=1, max=300),
    _k("statement_timeout_ms", "int", 30000, "statement_timeout on every session opened on an external target",
       min=100, max=3_600_000),
    _k("lock_timeout_ms", "int", 2000, "lock_timeout on every session opened on an external target", min=10, max=600_000),
    _k("check_timeout_s", "float", 120, "a static check still running after this is stopped (error)", min=1, max=86400),
    _k("drill_timeout_s", "float", 1800, "a drill or load check still running after this is stopped (error)",
       min=1, max=86400),
    _k("app_role", "str", None, "the application's role (CFG009, SEC004); default: the DSN's user"),
    _k("weights", "table", {}, "per-check weight overrides: {IDX005 = 1.0}"),
    _k("waivers", "table", [], "[[waivers]] id = 'IDX001[:object]', reason = '…', expires = 2027-01-31"),
    _k("declared_ram", "str", None, "RAM of the production host for CFG010, e.g. '16GB'"),
    _k("rto_seconds", "float", 3600, "declared recovery time objective", min=0),
    _k("rpo_seconds", "float", 300, "declared recovery point objective (0 = synchronous replication required)", min=0),
    # --- docker provider (--pgready-provider docker) ---
    _k("docker_pg_image", "str", None, "PostgreSQL image of the docker provider (default: postgres:<pg_version or 16>)"),
    _k("docker_pgbouncer_image", "str", "edoburu/pgbouncer:latest", "PgBouncer image of the docker provider"),
    _k("docker_toxiproxy_image", "str", "ghcr.io/shopify/toxiproxy:2.12.0", "Toxiproxy image of the docker provider"),
    _k("docker_engine_timeout", "float", 3, "seconds the startup probe waits for the Docker engine to answer",
       min=0.1, max=60),
    # --- schema ---
    _k("seq_usage_fail", "float", 0.75, "SCH002: fail at this share of the column type's range", min=0.01, max=1),
    _k("seq_usage_warn", "float", 0.50, "SCH002: warn in evidence from this share", min=0.0, max=1),
    _k("timestamp_allow", "list", [], "SCH006: columns allowed to be timestamp without time zone (schema.table.column, * glob)"),
    _k("money_patterns", "list", ["price", "amount", "cost", "total", "balance", "fee", "revenue", "paid", "refund",
                                  "tax", "salary", "payment", "subtotal", "discount"],
       "SCH007/SCH008: column-name fragments that mean money"),
    _k("quantity_patterns", "list", ["quantity", "qty", "stock", "count"], "SCH008: column-name fragments that mean quantities"),
    _k("unlogged_allow", "list", [], "SCH010: UNLOGGED tables allowed (schema.table, * glob)"),
    # --- indexes ---
    _k("min_stats_age_days", "float", 7, "IDX005/IDX007: statistics younger than this make usage checks na", min=0),
    _k("unused_index_min_bytes", "int", 1_048_576, "IDX005: ignore unused indexes smaller than this", min=0),
    _k("index_bloat_ratio", "float", 0.5, "IDX006: estimated bloat share that fails", min=0.01, max=1),
    _k("index_bloat_min_bytes", "int", 10_485_760, "IDX006: ignore indexes smaller than this", min=0),
    _k("seqscan_min_rows", "int", 100_000, "IDX007/PERF003: a table this large is large", min=0),
    _k("seqscan_ratio", "float", 0.5, "IDX007: share of sequential scans that fails", min=0.01, max=1),
    # --- config ---
    _k("archive_grace_seconds", "float", 300, "CFG006: grace beyond archive_timeout for the last archived WAL", min=0),
    _k("minor_releases_behind", "int", 2, "CFG007: how many minor releases behind the newest is tolerated", min=0, max=50),
    _k("shared_buffers_min_ratio", "float", 0.15, "CFG010: lower bound of shared_buffers / RAM", min=0, max=1),
    _k("shared_buffers_max_ratio", "float", 0.40, "CFG010: upper bound of shared_buffers / RAM", min=0, max=1),
    _k("work_mem_ram_ratio", "float", 1.0, "CFG010: work_mem x max_connections must stay under this share of RAM", min=0, max=100),
    _k("max_connections_limit", "int", 500, "CFG011: max_connections above this needs a pooler", min=1),
    _k("min_reserved_connections", "int", 3, "CFG011: superuser_reserved_connections at least", min=0),
    _k("requested_checkpoint_ratio", "float", 0.10, "CFG013: requested share of all checkpoints that fails", min=0, max=1),
    _k("min_checkpoints", "int", 10, "CFG013: fewer checkpoints since the stats reset make it na", min=1),
    # --- security ---
    _k("max_superusers", "int", 3, "SEC005: superusers allowed", min=0),
    _k("app_role_owns_schema", "bool", False, "SEC004: declare that the application role owns its schema on purpose"),
    _k("tls_exempt_networks", "networks", None,
       "SEC010: client networks whose connections need no TLS (default: loopback on an external target, none on "
       "a provisioned cluster, whose loopback links stand in for the network)"),
    # --- health ---
    _k("wraparound_ratio", "float", 0.5, "HLT001: share of the wraparound horizon that fails", min=0.01, max=1),
    _k("cache_hit_ratio", "float", 0.95, "HLT002: minimum cache hit ratio", min=0, max=1),
    _k("cache_sample_seconds", "float", 5, "HLT002: seconds between the two samples", min=0.1, max=600),
    _k("cache_min_reads", "int", 1000, "HLT002: fewer block reads between samples make it na", min=1),
    _k("max_xact_age_seconds", "float", 300, "HLT003", min=1),
    _k("max_idle_in_xact_seconds", "float", 60, "HLT004", min=1),
    _k("max_lock_wait_seconds", "float", 30, "HLT005", min=0.1),
    _k("max_connection_ratio", "float", 0.8, "HLT006", min=0.01, max=1),
    _k("dead_tuple_ratio", "float", 0.2, "HLT007: dead / (live + dead) that fails", min=0.01, max=1),
    _k("bloat_min_rows", "int", 10_000, "HLT007/HLT008: ignore tables smaller than this", min=0),
    _k("stale_stats_factor", "float", 2, "HLT008: modifications above this many autoanalyze thresholds fail", min=1),
    _k("max_prepared_xact_age_seconds", "float", 300, "HLT009", min=1),
    _k("max_xmin_horizon_xids", "int", 10_000_000, "HLT010: xmin horizon age that fails", min=1),
    # --- replication ---
    _k("expected_replicas", "int", None, "REP001: standbys that must stream (default: the topology's)", min=0),
    _k("max_replay_lag_seconds", "float", 5, "REP002", min=0),
    _k("max_replay_lag_bytes", "int", 64 * 1024 * 1024, "REP002", min=0),
    # --- pooling ---
    _k("pool_mode", "choice", None, "POOL001: the pool_mode PgBouncer must run", choices=("session", "transaction", "statement")),
    _k("pool_clients", "int", 1000, "POOL002: concurrent clients through the pooler", min=1, max=20000),
    _k("max_pool_wait_ms", "float", 100, "POOL006: maximum pool wait under load", min=0),
    _k("pool_duration_s", "float", 5, "POOL002/POOL006: seconds the pooled clients keep querying", min=1, max=3600),
    _k("pool_client_rate", "float", 1, "POOL002/POOL006: queries per second of each pooled client", min=0.01, max=100),
    _k("pool_xact_ms", "float", 2, "POOL002/POOL006: server time of each client query (pg_sleep), like an app "
       "transaction", min=0, max=10000),
    # --- performance ---
    _k("load_protocol", "choice", "prepared", "query protocol of the load users (pgbench -M)",
       choices=("prepared", "extended", "simple")),
    _k("load_max_requests", "int", 10_000_000, "upper bound of requests in one load run", min=1),
    _k("load_workers", "int", 0, "master/worker mode: local Locust workers (0: --processes)", min=0, max=256),
    _k("load_remote_workers", "int", 0, "master/worker mode: workers on other hosts to wait for (docs/load.md)",
       min=0, max=1000),
    _k("load_master_bind", "str", "127.0.0.1", "address the Locust master listens on for remote workers"),
    _k("load_master_port", "int", None, "port the Locust master listens on (default: a free one)", min=1, max=65535),
    _k("calibrate_seconds", "float", 3, "PERF006: seconds of the SELECT 1 calibration run", min=1, max=600),
    _k("harness_headroom", "float", 0.7, "PERF006: share of the harness ceiling a target may use", min=0.05, max=1),
    _k("perf004_p95_ms", "float", 50, "PERF004: p95 budget of each critical query", min=0.001),
    _k("perf004_rounds", "int", 100, "PERF004: timed rounds per critical query", min=5, max=100000),
    _k("slow_query_min_calls", "int", 2, "PERF005: statements called fewer times are left out (one-off DDL, seeds)",
       min=1),
    _k("critical_queries", "list", [], "PERF003/PERF004: SQL of the queries that must stay fast"),
    _k("slow_query_ms", "float", 100, "PERF005: mean time above this fails", min=0),
    _k("slo_p95_ms", "float", 100, "PERF001", min=0.001),
    _k("slo_p99_ms", "float", 250, "PERF001", min=0.001),
    _k("target_rps", "float", 100, "PERF002: throughput target (requests/s)", min=0),
    _k("max_error_rate", "float", 0.001, "PERF002", min=0, max=1),
    _k("load_users", "int", 8, "simulated users of the load run", min=1, max=20000),
    _k("load_duration_s", "float", 20, "seconds of the load run (warm-up excluded)", min=1, max=86400),
    _k("load_warmup_s", "float", 3, "seconds of warm-up excluded from the figures", min=0, max=3600),
    _k("load_rate", "float", None, "open model: fixed arrival rate (requests/s); absent: closed model", min=0.1),
    _k("load_processes", "int", None, "Locust worker processes (default: one per core)", min=1, max=256),
    _k("workload", "choice", "point", "built-in workload", choices=("point", "tpcb", "app")),
    # --- backup / pitr ---
    _k("backup_command", "str", None, "BKP004: your backup command template"),
    _k("restore_command_line", "str", None, "BKP004: your restore command template"),
    _k("backup_command_timeout_s", "float", 1800, "BKP004: seconds each of your backup/restore commands may take",
       min=1, max=86400),
    _k("backup_jobs", "int", 2, "BKP001/BKP004: parallel jobs of the drill's pg_dump -Fd / pg_restore", min=1, max=64),
    _k("backup_manifest_checksums", "choice", "CRC32C",
       "BKP002/BKP003: the manifest checksum algorithm your base backups use (NONE detects no flipped bytes)",
       choices=("CRC32C", "SHA224", "SHA256", "SHA384", "SHA512", "NONE")),
    _k("wal_archive_dir", "path", None, "PITR001: the directory your archive_command writes to, when this host "
       "can read it (an external target's archive; the embedded cluster's is known)"),
    _k("archive_rpo_window_s", "float", 3, "PITR005: seconds the bounded writer runs while archiving is timed",
       min=0.5, max=120),
    # --- failover ---
    _k("failover_trials", "int", 5, "timed drills repeat this many times", min=1, max=100),
    _k("promote_command", "str", None, "hand promotion to your HA tool: a shell template"),
    _k("fence_command", "str", None, "fence the old primary with your HA tool: a shell template"),
    _k("switchover_gap_seconds", "float", 5, "FO008: maximum write gap of a planned switchover", min=0),
    _k("failover_writers", "int", 4, "oracle writers committing concurrently during a drill", min=1, max=64),
    _k("resume_timeout_seconds", "float", 60, "FO001/FO008/FO009/POOL005: how long clients may take to write "
       "again after a fault before the drill calls it failed (bounds every wait)", min=1, max=3600),
    _k("failover_stall_seconds", "float", 0.5, "FO002/FO003: the standby receives no WAL for this long before "
       "the primary is killed (the lag an RPO must cover); 0 = a crash without a stall", min=0, max=60),
    _k("partition_seconds", "float", 3, "FO004: length of the primary-standby partition", min=0.5, max=300),
    _k("outage_wal_mb", "int", 64, "FO004/REP005: WAL written while a standby is cut off (segment switches), "
       "so retention limits are exercised", min=0, max=4096),
    _k("replica_catchup_timeout_s", "float", 60, "FO004/REP005: a standby must catch up within this", min=1,
       max=3600),
    _k("client_conninfo", "str", "connect_timeout=5 keepalives=1 keepalives_idle=5 keepalives_interval=2 "
       "keepalives_count=3 tcp_user_timeout=10000",
       "FO007 and the drills' writers: the libpq parameters of your application's connections"),
    _k("client_query_timeout_s", "float", 5, "FO007 and the drills' writers: the client-side deadline your "
       "application puts on a query (JDBC socketTimeout, asyncpg command_timeout …); 0 = none", min=0, max=3600),
    _k("max_time_to_error_seconds", "float", 10, "FO007: a network fault must surface as an error within this",
       min=0.1, max=3600),
)

SPEC_BY_NAME: dict[str, Key] = {k.name: k for k in SPEC}


@dataclass(frozen=True)
class Waiver:
    check: str
    object: str | None
    reason: str
    expires: dt.date | None

    def expired(self, today: dt.date | None = None) -> bool:
        return self.expires is not None and (today or dt.date.today()) > self.expires


@dataclass
class Settings:
    values: dict[str, Any] = field(repr=False)  # holds DSNs with passwords: pytest prints fixture reprs on failure
    sources: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(f"unknown pgready setting {name!r}") from None

    @property
    def waiver_list(self) -> list[Waiver]:
        return list(self.values["waivers"])

    def weight_for(self, check_id: str, default: float) -> float:
        return float(self.values["weights"].get(check_id, default))

    @property
    def effective_provider(self) -> str:
        return self.values["provider"] or ("external" if self.values["dsn"] else "local")

    @property
    def read_only_target(self) -> bool:
        return self.effective_provider == "external" and not self.values["allow_destructive"]


def _suggest(word: str, pool: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(pool), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _where(origin: str, name: str) -> str:
    return f"{origin}: {name}"


def coerce(key: Key, raw: Any, origin: str, base_dir: Path | None = None) -> Any:
    """Turn a raw value (CLI string, ini string, TOML value) into the key's type, or raise a usage error."""
    where = _where(origin, key.name)
    if raw is None:
        return None
    t = key.type
    try:
        if t == "str":
            return str(raw)
        if t in ("int", "float"):
            if isinstance(raw, bool):
                raise ValueError
            val = int(raw) if t == "int" and not (isinstance(raw, str) and "." in raw) else float(raw)
            if t == "int" and float(val) != int(val):
                raise ValueError
            val = int(val) if t == "int" else float(val)
            if val != val or val in (float("inf"), float("-inf")):
                raise ValueError
            if key.min is not None and val < key.min or key.max is not None and val > key.max:
                rng = f"{key.min if key.min is not None else '-inf'}..{key.max if key.max is not None else 'inf'}"
                raise PgReadyUsageError(f"{where} = {raw!r} is out of range", f"use a value in {rng}")
            return val
        if t == "bool":
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off", ""):
                return False
            raise ValueError
        if t == "choice":
            s = str(raw)
            if s not in key.choices:
                raise PgReadyUsageError(f"{where} = {s!r} is not one of {', '.join(key.choices)}",
                                        f"use one of: {', '.join(key.choices)}{_suggest(s, key.choices)}")
            return s
        if t == "suites":
            names = raw if isinstance(raw, list) else [p for p in str(raw).replace(" ", "").split(",")]
            names = [n for n in names if n]
            if not names:
                raise PgReadyUsageError(f"{where} is empty", f"name one or more of: {', '.join(CATEGORIES)}")
            for n in names:
                if n not in CATEGORIES:
                    raise PgReadyUsageError(f"{where}: unknown suite {n!r}{_suggest(n, CATEGORIES)}",
                                            f"use a comma list of: {', '.join(CATEGORIES)}")
            return [c for c in CATEGORIES if c in names]
        if t == "list":
            if isinstance(raw, str):
                return [raw]
            if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
                raise ValueError
            return list(raw)
        if t == "networks":
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
                raise ValueError
            for x in items:
                try:
                    ipaddress.ip_network(x, strict=False)
                except ValueError:
                    fix = 'write addresses or CIDR blocks, e.g. ["127.0.0.0/8", "::1/128"]'
                    raise PgReadyUsageError(f"{where}: {x!r} is not an IP network", fix) from None
            return list(items)
        if t == "path":
            p = Path(str(raw)).expanduser()
            return p if p.is_absolute() or base_dir is None else (base_dir / p)
        if t == "pathlist":
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list):
                raise ValueError
            out = []
            for x in items:
                p = Path(str(x)).expanduser()
                out.append(p if p.is_absolute() or base_dir is None else base_dir / p)
            return out
        if t == "table":
            return raw
    except PgReadyUsageError:
        raise
    except (TypeError, ValueError):
        pass
    kind = {"int": "a whole number", "float": "a number", "bool": "true or false", "list": "a list of strings",
            "pathlist": "a list of paths", "networks": "a list of IP networks"}.get(t, t)
    raise PgReadyUsageError(f"{where} = {raw!r} is not {kind}", f"give {key.name} {kind}")


def parse_waivers(raw: Any, origin: str) -> list[Waiver]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise PgReadyUsageError(f"{origin}: waivers must be an array of tables",
                                "write [[waivers]] entries with id, reason and optional expires")
    out = []
    for i, w in enumerate(raw):
        if not isinstance(w, dict):
            raise PgReadyUsageError(f"{origin}: waivers[{i}] is not a table", "write id = '…', reason = '…'")
        unknown = set(w) - {"id", "reason", "expires"}
        if unknown:
            raise PgReadyUsageError(f"{origin}: waivers[{i}] has unknown key {sorted(unknown)[0]!r}",
                                    "use only id, reason and expires")
        wid = str(w.get("id", ""))
        check, _, obj = wid.partition(":")
        catalogue_like = re.fullmatch(r"(SCH|IDX|CFG|SEC|HLT|REP|BKP|PITR|FO|POOL|PERF)\d{3}", check)
        if check not in CATALOG and (catalogue_like or not re.fullmatch(r"[A-Z][A-Z0-9_]*\d{3}", check)):
            raise PgReadyUsageError(f"{origin}: waivers[{i}] names unknown check {check!r}{_suggest(check, CATALOG)}",
                                    "use a check id from CHECKS.md, optionally followed by :object")
        reason = str(w.get("reason", "")).strip()
        if not reason:
            raise PgReadyUsageError(f"{origin}: waiver {wid!r} has no reason", "every waiver needs reason = '…'")
        exp = w.get("expires")
        if isinstance(exp, str):
            try:
                exp = dt.date.fromisoformat(exp)
            except ValueError:
                raise PgReadyUsageError(f"{origin}: waiver {wid!r} expires = {exp!r} is not a date",
                                        "write expires = 2027-01-31") from None
        elif isinstance(exp, dt.datetime):
            exp = exp.date()
        elif exp is not None and not isinstance(exp, dt.date):
            raise PgReadyUsageError(f"{origin}: waiver {wid!r} expires is not a date", "write expires = 2027-01-31")
        out.append(Waiver(check, obj or None, reason, exp))
    return out


def parse_weights(raw: Any, origin: str, known_ids: Iterable[str]) -> dict[str, float]:
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise PgReadyUsageError(f"{origin}: weights must be a table", "write [weights] IDX005 = 1.0")
    ids = set(known_ids)
    out = {}
    for cid, w in raw.items():
        if cid not in ids:
            raise PgReadyUsageError(f"{origin}: weights names unknown check {cid!r}{_suggest(cid, ids)}",
                                    "use a check id from CHECKS.md")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0 or w > 100:
            raise PgReadyUsageError(f"{origin}: weights.{cid} = {w!r} is not a weight", "use a number from 0 to 100")
        out[cid] = float(w)
    return out


def read_toml(path: Path, origin: str, table: str | None = None) -> dict[str, Any]:
    """Read a TOML file; a pyproject.toml is read at [tool.pgready]."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PgReadyUsageError(f"{origin}: {path} does not exist", "give the path of an existing TOML file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise PgReadyUsageError(f"{origin}: cannot read {path} ({e.__class__.__name__})",
                                "give a readable UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise PgReadyUsageError(f"{origin}: {path} is not valid TOML ({e})", "fix the TOML syntax") from None
    if table or path.name == "pyproject.toml":
        data = data.get("tool", {}).get("pgready", {})
    if not isinstance(data, dict):
        raise PgReadyUsageError(f"{origin}: [tool.pgready] is not a table", "write [tool.pgready] key = value")
    return data


def apply_table(values: dict[str, Any], sources: dict[str, str], data: dict[str, Any], origin: str,
                base_dir: Path | None) -> None:
    for name, raw in data.items():
        key = SPEC_BY_NAME.get(name)
        if key is None:
            raise PgReadyUsageError(f"{origin}: unknown key {name!r}{_suggest(name, SPEC_BY_NAME)}",
                                    "remove it or fix its spelling (see README: settings)")
        if name == "waivers":
            values[name] = parse_waivers(raw, origin)
        elif name == "weights":
            values[name] = parse_weights(raw, origin, CATALOG)
        else:
            values[name] = coerce(key, raw, origin, base_dir)
        sources[name] = origin


def build(cli: dict[str, Any], ini: Callable[[str], Any] | None, rootdir: Path | None) -> Settings:
    """Merge every source. `cli` maps key → value given on the command line (absent/None = not given)."""
    values: dict[str, Any] = {k.name: (list(k.default) if isinstance(k.default, list) else
                                       dict(k.default) if isinstance(k.default, dict) else k.default) for k in SPEC}
    values["waivers"] = []
    sources: dict[str, str] = {k.name: "default" for k in SPEC}
    if ini is not None:
        for k in SPEC:
            if k.type == "table":
                continue
            raw = ini(k.name)
            if raw not in (None, "", []):
                values[k.name] = coerce(k, raw, f"ini pgready_{k.name}", rootdir)
                sources[k.name] = "ini"
    if rootdir is not None and (rootdir / "pyproject.toml").is_file():
        apply_table(values, sources, read_toml(rootdir / "pyproject.toml", "pyproject.toml"),
                    "pyproject.toml [tool.pgready]", rootdir)
    cfg = cli.get("config")
    if cfg:
        path = Path(cfg).expanduser()
        apply_table(values, sources, read_toml(path, "--pgready-config"), f"--pgready-config {path.name}",
                    path.resolve().parent)
    for name, raw in cli.items():
        if raw is None or raw == [] or name not in SPEC_BY_NAME:
            continue
        key = SPEC_BY_NAME[name]
        if key.type == "bool" and raw is False:
            continue
        values[name] = coerce(key, raw, f"--pgready-{name.replace('_', '-')}", Path.cwd())
        sources[name] = "cli"
    _cross_check(values)
    return Settings(values, sources)


def _cross_check(v: dict[str, Any]) -> None:
    if v["provider"] == "external" and not v["dsn"]:
        raise PgReadyUsageError("--pgready-provider external needs a target", "add --pgready-dsn postgresql://user@host/db")
    if v["dsn"] and v["provider"] in ("local", "docker"):
        raise PgReadyUsageError(f"--pgready-dsn conflicts with --pgready-provider {v['provider']}",
                                "drop one: a DSN means an existing (external) target")
    if (v["replica_dsn"] or v["pgbouncer_dsn"]) and not v["dsn"]:
        raise PgReadyUsageError("replica/pgbouncer DSNs were given without --pgready-dsn",
                                "add --pgready-dsn for the primary of that topology")
    if v["seq_usage_warn"] > v["seq_usage_fail"]:
        raise PgReadyUsageError("seq_usage_warn is above seq_usage_fail", "set seq_usage_warn <= seq_usage_fail")
    if v["shared_buffers_min_ratio"] > v["shared_buffers_max_ratio"]:
        raise PgReadyUsageError("shared_buffers_min_ratio is above shared_buffers_max_ratio", "swap them")
    if v["slo_p95_ms"] > v["slo_p99_ms"]:
        raise PgReadyUsageError("slo_p95_ms is above slo_p99_ms", "a p95 target cannot exceed the p99 target")
    for name in ("init_sql", "paths"):
        for p in v[name]:
            if name == "init_sql" and not Path(p).is_file():
                raise PgReadyUsageError(f"--pgready-init-sql {p} does not exist or is not a file",
                                        "give the path of a readable .sql file")
    for name in ("postgresql_conf", "pgbouncer_ini", "locustfile"):
        p = v[name]
        if p is not None and not Path(p).is_file():
            raise PgReadyUsageError(f"--pgready-{name.replace('_', '-')} {p} does not exist or is not a file",
                                    "give the path of a readable file")
    for name in ("postgresql_conf", "pgbouncer_ini", "locustfile", "init_sql"):
        paths = v[name] if isinstance(v[name], list) else [v[name]] if v[name] else []
        for p in paths:
            try:
                Path(p).read_bytes()
            except OSError as e:
                raise PgReadyUsageError(f"cannot read {p} ({e.strerror})", "fix its permissions") from None
    if v["dsn"]:
        from .redact import remember_secret
        from .dsn import parse_dsn
        remember_secret(parse_dsn(v["dsn"], "--pgready-dsn").get("password"))
        for i, d in enumerate(v["replica_dsn"]):
            remember_secret(parse_dsn(d, "--pgready-replica-dsn").get("password"))
        if v["pgbouncer_dsn"]:
            remember_secret(parse_dsn(v["pgbouncer_dsn"], "--pgready-pgbouncer-dsn").get("password"))
