"""pytest hooks: options, collection of the shipped suites, status capture, reports, exit status.

Nothing heavy is imported at module level: without --pgready the plugin only offers fixtures
and must cost nothing (no psycopg, no locust).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from .catalog import CATALOG, SEVERITY_WEIGHTS, CheckSpec
from .errors import PgReadyUsageError
from .settings import SPEC

RESULT_KEY = "pgready_result"
TARGET_KEY = "pgready_target"
_record_key = pytest.StashKey[Any]()
_start_key = pytest.StashKey[float]()


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """suites/, load/, reports/: inside the wheel (force-included) or beside the package in a checkout."""
    inside = package_dir() / name
    return inside if inside.is_dir() else package_dir().parent / name


# ----------------------------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pgready", "PostgreSQL production readiness")
    group.addoption("--pgready", action="store_true", default=False, help="run the readiness suites")
    for key in SPEC:
        if key.type == "table":
            continue
        if key.cli:
            flag = "--pgready-" + key.name.replace("_", "-")
            if key.type == "bool":
                group.addoption(flag, action="store_true", default=None, dest=f"pgready_{key.name}", help=key.help)
            elif key.type in ("list", "pathlist"):
                group.addoption(flag, action="append", default=None, dest=f"pgready_{key.name}", help=key.help)
            else:
                group.addoption(flag, action="store", default=None, dest=f"pgready_{key.name}", help=key.help)
        ini_type = {"bool": "bool", "list": "linelist", "pathlist": "linelist",
                    "networks": "linelist"}.get(key.type, "string")
        parser.addini(f"pgready_{key.name}", key.help, type=ini_type, default=None)


def _cli_values(config: pytest.Config) -> dict[str, Any]:
    return {k.name: config.getoption(f"pgready_{k.name}", default=None) for k in SPEC if k.cli}


def build_settings(config: pytest.Config):
    from . import settings as settings_mod

    def ini(name: str) -> Any:
        try:
            v = config.getini(f"pgready_{name}")
        except (ValueError, KeyError):
            return None
        return v

    return settings_mod.build(_cli_values(config), ini, Path(str(config.rootpath)))


# --------------------------------------------------------------------------------------------- configure
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pgready(id, severity=None, category=None, title=None): bind a test to a readiness check id")
    from . import fixtures

    config.pluginmanager.register(fixtures, "pgready-fixtures")
    if not config.getoption("pgready"):
        return
    try:
        settings = build_settings(config)
        from .preflight import preflight

        preflight(settings)
    except PgReadyUsageError as e:
        raise pytest.UsageError(e.line()) from None
    config.stash[fixtures.settings_key] = settings
    state = RunState(settings)
    config.stash[state_key] = state
    config.pluginmanager.register(state, "pgready-state")
    if config.pluginmanager.hasplugin("html"):  # pytest-html: score banner + evidence per row
        from .report import pytest_html as _pgready_html

        config.pluginmanager.register(_pgready_html, "pgready-html")
    # `pytest --pgready` with no paths: the shipped suites plus the user's own checks.
    from _pytest.config import Config as _C

    if getattr(config, "args_source", None) != _C.ArgsSource.ARGS:
        config.args[:] = [str(shipped_dir("suites"))] + [str(p) for p in settings.paths]


state_key = pytest.StashKey["RunState"]()


def check_spec(item: pytest.Item) -> CheckSpec | None:
    """The catalogue entry of a test marked @pytest.mark.pgready (user checks bring their own metadata)."""
    m = item.get_closest_marker("pgready")
    if m is None:
        return None
    cid = m.kwargs.get("id") or (m.args[0] if m.args else None)
    if not cid:
        return None
    base = CATALOG.get(cid)
    sev = m.kwargs.get("severity") or (base.severity if base else "medium")
    cat = m.kwargs.get("category") or (base.category if base else "schema")
    title = m.kwargs.get("title") or (base.title if base else (item.obj.__doc__ or item.name).strip().splitlines()[0]
                                      if hasattr(item, "obj") else item.name)
    kind = m.kwargs.get("kind") or (base.kind if base else "S")
    return CheckSpec(cid, cat, sev, kind, title)


class RunState:
    """The controller's view of the run: every check result, the target, and the verdict."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.selected: dict[str, CheckSpec] = {}
        self.deselected: set[str] = set()
        self.target: dict[str, Any] = {}
        self.report: dict[str, Any] | None = None
        self.started = time.time()

    # collection: drop checks of suites not selected; remember every selected check
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        keep, drop = [], []
        suites = set(self.settings.suite)
        for item in items:
            spec = check_spec(item)
            if spec is not None:
                try:
                    _validate_marker(item, spec)
                except pytest.UsageError as e:
                    from .fixtures import _aborted_key

                    config.stash[_aborted_key] = str(e)  # no report of a run that never started
                    raise
            # a marker may name the suite that runs it (REP002 under load runs with the performance suite)
            if spec is not None and (_marker_suite(item) or spec.category) in suites:
                keep.append(item)
                self.selected[spec.id] = spec
            elif spec is None and not _in_shipped(item):
                keep.append(item)
            else:
                drop.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        for spec in CATALOG.values():  # catalogue checks of a selected suite are selected even if not collected
            if spec.category in suites:
                self.selected.setdefault(spec.id, spec)

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Checks a user left out (-k, -m, --deselect) are reported as such, not as unimplemented."""
        for item in items:
            spec = check_spec(item)
            if spec is not None:
                self.deselected.add(spec.id)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == RESULT_KEY:
                self.results.setdefault(value["id"], []).append(value)
            elif key == TARGET_KEY and not self.target:
                self.target = value

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):
            return  # xdist worker: the controller writes the reports
        from .fixtures import _aborted_key

        if session.config.stash.get(_aborted_key, None):
            return  # the run could not start (bad input): the one-line error says it all
        from .results import CheckResult
        from .aggregate import merge_results

        results: list[CheckResult] = []
        for cid, spec in self._selected_everywhere().items():
            got = self.results.get(cid)
            if got:
                results.append(merge_results([CheckResult.from_dict(d) for d in got]))
            else:
                results.append(CheckResult(cid, spec.title, spec.category, spec.severity,
                                           self.settings.weight_for(cid, SEVERITY_WEIGHTS[spec.severity]),
                                           "na", summary=_not_run_reason(spec, session, cid in self.deselected)))
        try:
            from .report import build_report, write_reports

            self.report = build_report(results, self.target, self.settings, started=self.started)
            from .report.junit import add_junit_properties

            add_junit_properties(session.config, self.report)
            self.paths = write_reports(self.report, Path(self.settings.report_dir))
        except PgReadyUsageError as e:
            session.config.pluginmanager.get_plugin("terminalreporter").write_line(e.line(), red=True)
            session.exitstatus = 4
            return
        if self.settings.fail_under is not None:
            session.exitstatus = 0 if self.report["gate"]["passed"] else 1

    def _selected_everywhere(self) -> dict[str, CheckSpec]:
        """Under xdist the controller collects nothing: its selection is the catalogue's checks of the chosen
        suites plus every check a worker reported (user checks, checks run by another suite's marker)."""
        selected = dict(self.selected)
        for spec in CATALOG.values():
            if spec.category in self.settings.suite:
                selected.setdefault(spec.id, spec)
        for cid, got in self.results.items():
            if cid not in selected and got:
                d = got[0]
                selected[cid] = CheckSpec(cid, d["category"], d["severity"], "S", d["title"])
        return selected

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.report is None:
            return
        from .report.terminal import summary_lines

        terminalreporter.section("pgready")
        for line, markup in summary_lines(self.report, getattr(self, "paths", {})):
            terminalreporter.write_line(line, **markup)


def _validate_marker(item: pytest.Item, spec: CheckSpec) -> None:
    """A user's own check names its severity, category and kind in the marker: the report's schema and the
    score only know the catalogue's values, so a typo is a usage error, not a broken readiness.json."""
    from .catalog import CATEGORIES

    where = f"@pytest.mark.pgready on {item.nodeid}"
    for key, value, allowed in (("severity", spec.severity, tuple(SEVERITY_WEIGHTS)),
                                ("category", spec.category, CATEGORIES),
                                ("kind", spec.kind, ("S", "D", "D*", "L", "S/L"))):
        if value not in allowed:
            raise pytest.UsageError(PgReadyUsageError(f"{where}: {key} {value!r} is not one of "
                                                      f"{', '.join(allowed)}", f"use {key}={allowed[0]!r} "
                                                      f"or another of those").line())
    suite = _marker_suite(item)
    if suite is not None and suite not in CATEGORIES:
        raise pytest.UsageError(PgReadyUsageError(f"{where}: suite {suite!r} is not one of {', '.join(CATEGORIES)}",
                                                  "name the suite that should run the check").line())


def _marker_suite(item: pytest.Item) -> str | None:
    m = item.get_closest_marker("pgready")
    return m.kwargs.get("suite") if m is not None else None


def _in_shipped(item: pytest.Item) -> bool:
    try:
        return Path(str(item.path)).resolve().is_relative_to(shipped_dir("suites").resolve())
    except (OSError, ValueError):
        return False


def _not_run_reason(spec: CheckSpec, session: pytest.Session, deselected: bool = False) -> str:
    if session.shouldstop or session.shouldfail:
        return "not run: the session stopped early"
    opt = session.config.option
    # under xdist the deselection happens in the workers: the controller only sees that a filter was given
    if deselected or getattr(opt, "keyword", "") or getattr(opt, "markexpr", "") or getattr(opt, "deselect", None):
        return "not run: left out of this run (-k, -m or --deselect)"
    return f"not implemented in pytest-pgready yet ({spec.kind} check)"


# -------------------------------------------------------------------------------------- per-check capture
def pytest_runtest_setup(item: pytest.Item) -> None:
    spec = check_spec(item)
    if spec is None or not item.config.getoption("pgready", default=False):
        return
    from .fixtures import settings_key
    from .results import CheckNA, Record

    settings = item.config.stash[settings_key]
    item.stash[_record_key] = Record(spec.id, settings.waiver_list)
    item.stash[_start_key] = time.perf_counter()
    if spec.kind in ("D", "L") and settings.read_only_target:
        raise CheckNA("destructive drill against an external target: pass --pgready-allow-destructive, "
                      "or run it on the embedded cluster (omit --pgready-dsn)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A watchdog per check: past its time limit, break pgready's connections so a call blocked on a
    server that stopped answering fails (status error) and the run goes on to write its report."""
    spec = check_spec(item)
    if spec is None or not item.config.getoption("pgready", default=False):
        return (yield)
    import threading

    from .cluster.model import abort_open_connections
    from .fixtures import settings_key

    settings = item.config.stash[settings_key]
    limit = settings.check_timeout_s if spec.kind in ("S",) else settings.drill_timeout_s

    def fire() -> None:
        item.stash[_timed_out_key] = limit
        abort_open_connections()

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    try:
        return (yield)
    finally:
        timer.cancel()


_timed_out_key = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report: pytest.TestReport = yield
    if item.config.getoption("pgready", default=False):
        _redact_report(report)
    spec = check_spec(item)
    record = item.stash.get(_record_key, None)
    if spec is None or record is None:
        return report
    from .results import CheckFailed, CheckNA, CheckWaived
    from .redact import redact_text

    status = item.stash.get(_status_key, None)
    if call.excinfo is not None and (status is None or status[0] in ("pass",)):
        exc = call.excinfo.value
        if isinstance(exc, CheckWaived):
            status = ("waived", record.summary_text or exc.reason)
        elif isinstance(exc, CheckNA):
            status = ("na", exc.reason)
        elif isinstance(exc, pytest.skip.Exception):
            status = ("na", str(getattr(exc, "msg", exc)))
        elif isinstance(exc, CheckFailed):
            status = ("fail", record.summary_text)
        elif isinstance(exc, AssertionError) and call.when == "call":
            status = ("fail", record.summary_text or _first_line(str(exc)) or "assertion failed")
        else:
            from .cluster.model import Unsupported

            if isinstance(exc, Unsupported):
                status = ("na", str(exc))
            else:
                where = "setup" if call.when == "setup" else "teardown" if call.when == "teardown" else "check"
                status = ("error", f"{where} error: {exc.__class__.__name__}: {_first_line(str(exc))}")
                limit = item.stash.get(_timed_out_key, None)
                if limit is not None:
                    status = ("error", f"no answer within {limit:g}s: the check was stopped "
                                       f"(target unresponsive?) — {exc.__class__.__name__}: {_first_line(str(exc))}")
        item.stash[_status_key] = status
    elif call.when == "call" and status is None:
        item.stash[_status_key] = status = ("pass", record.summary_text or "holds")
    if call.when == "teardown":
        status = item.stash.get(_status_key, None) or ("error", "check did not run")
        from .fixtures import current_target, settings_key
        from .results import CheckResult

        settings = item.config.stash[settings_key]

        result = CheckResult(
            id=spec.id, title=spec.title, category=spec.category, severity=spec.severity,
            weight=settings.weight_for(spec.id, SEVERITY_WEIGHTS.get(spec.severity, 5.0)),
            status=status[0], summary=redact_text(status[1] or ""), evidence=record.evidence,
            metrics=record.metrics, duration_s=round(time.perf_counter() - item.stash.get(_start_key, time.perf_counter()), 4),
            score=record.score if status[0] in ("pass", "fail") else None, nodeid=item.nodeid,
            report_metrics=record.report_metrics)
        report.user_properties.append((RESULT_KEY, json.loads(json.dumps(result.to_dict(), default=str))))
        target = current_target()
        if target:
            report.user_properties.append((TARGET_KEY, target))
    return report


_status_key = pytest.StashKey[Any]()


def _redact_report(report: pytest.TestReport) -> None:
    """A traceback or captured output may quote a DSN (psycopg.connect's arguments under --showlocals,
    a library's log line): it reaches the terminal, JUnit and pytest-html, so it is masked here."""
    from .redact import redact_text

    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        text = str(report.longrepr)
        masked = redact_text(text)
        if masked != text:
            report.longrepr = masked  # structured repr only given up when it held a secret
    report.sections = [(title, redact_text(body)) for title, body in report.sections]


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()[:500]
    return ""
