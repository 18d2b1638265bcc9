"""faults.py without servers: toxics are always removed, na reasons name the install hint, command
templates quote their values, stale lock files of dead postmasters are cleared."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_pgready import faults
from pytest_pgready.cluster.binaries import TOXIPROXY_HINT
from pytest_pgready.cluster.model import Unsupported


class FakeAPI:
    def __init__(self, fail_remove: bool = False) -> None:
        self.toxics: dict[str, tuple] = {}
        self.enabled: dict[str, bool] = {}
        self.calls: list[str] = []
        self.fail_remove = fail_remove

    def add_toxic(self, proxy, type, attributes, *, name=None, stream="downstream", toxicity=1.0):
        self.toxics[name] = (proxy, type, attributes, stream)
        self.calls.append(f"add {type} {stream}")

    def remove_toxic(self, proxy, name):
        self.calls.append(f"remove {name}")
        if self.fail_remove:
            raise RuntimeError("toxiproxy down")
        del self.toxics[name]

    def set_enabled(self, name, enabled):
        self.enabled[name] = enabled

    def reset(self):
        self.calls.append("reset")
        self.toxics.clear()


def cluster(api=None, missing="not requested"):
    return SimpleNamespace(toxiproxy=api, toxiproxy_missing=None if api else missing,
                           proxies={"primary": object(), "replication": object()} if api else {})


def test_toxic_removed_when_block_ends_and_on_exception() -> None:
    api = FakeAPI()
    c = cluster(api)
    with faults.latency(c, "primary", 100) as names:
        assert len(names) == 1 and api.toxics[names[0]][1:3] == ("latency", {"latency": 100, "jitter": 0})
    assert api.toxics == {}
    with pytest.raises(ZeroDivisionError):
        with faults.blackhole(c, "replication"):
            assert {t[3] for t in api.toxics.values()} == {"downstream", "upstream"}
            1 / 0
    assert api.toxics == {}


def test_every_toxic_kind() -> None:
    api = FakeAPI()
    c = cluster(api)
    for cm, kind, attrs in ((faults.bandwidth(c, "primary", 10), "bandwidth", {"rate": 10}),
                            (faults.reset_peer(c, "primary", 5), "reset_peer", {"timeout": 5}),
                            (faults.limit_data(c, "primary", 100), "limit_data", {"bytes": 100}),
                            (faults.blackhole(c, "primary", 0, streams=("upstream",)), "timeout", {"timeout": 0})):
        with cm as names:
            assert api.toxics[names[0]][1:3] == (kind, attrs)
        assert api.toxics == {}


def test_failed_removal_falls_back_to_reset() -> None:
    api = FakeAPI(fail_remove=True)
    with faults.latency(cluster(api), "primary", 1):
        pass
    assert api.calls[-1] == "reset"


def test_proxy_disabled_is_reenabled_on_exception() -> None:
    api = FakeAPI()
    with pytest.raises(KeyError):
        with faults.proxy_disabled(cluster(api), "primary"):
            assert api.enabled["primary"] is False
            raise KeyError
    assert api.enabled["primary"] is True


def test_no_toxiproxy_is_unsupported_with_the_install_hint() -> None:
    with pytest.raises(Unsupported) as e:
        with faults.latency(cluster(None), "primary", 1):
            pass
    assert TOXIPROXY_HINT in str(e.value) and "not requested" in str(e.value)
    # a reason that already carries the hint is not repeated
    c = cluster(None, missing=f"toxiproxy-server is not installed: {TOXIPROXY_HINT}")
    assert faults.toxiproxy_reason(c).count(TOXIPROXY_HINT) == 1


def test_missing_proxy_is_unsupported() -> None:
    c = cluster(FakeAPI())
    c.proxies = {"primary": object()}
    with pytest.raises(Unsupported, match="replication"):
        faults.require_toxiproxy(c, "replication")


def test_render_command_quotes_values_and_rejects_unknown_placeholders() -> None:
    old = SimpleNamespace(host="127.0.0.1", port=5432, datadir=Path("/tmp/a b"))
    new = SimpleNamespace(host="127.0.0.1", port=5433, datadir=Path("/tmp/n"))
    cmd = faults.render_command("promote {new_primary_port} {old_primary_pgdata}", old, new)
    assert cmd == "promote 5433 '/tmp/a b'"
    with pytest.raises(ValueError, match="unknown placeholder"):
        faults.render_command("x {nope}", old, new)


def test_run_command_is_bounded(tmp_path) -> None:
    c = SimpleNamespace(workdir=tmp_path, bin=None)
    r = faults.run_command(c, "echo hi; exit 3")
    assert r["exit_code"] == 3 and r["stdout"] == "hi"
    r = faults.run_command(c, "sleep 5", timeout=0.3)
    assert r["exit_code"] is None and "timed out" in r["stderr"]


def test_stale_lock_files_of_a_dead_postmaster_are_removed(tmp_path) -> None:
    p = subprocess.Popen(["true"])
    p.wait()  # a reaped pid: gone
    datadir = tmp_path / "data"
    datadir.mkdir()
    (datadir / "postmaster.pid").write_text(f"{p.pid}\n{datadir}\n")
    node = SimpleNamespace(datadir=datadir, port=5999, cluster=SimpleNamespace(workdir=tmp_path))
    (tmp_path / ".s.PGSQL.5999.lock").write_text(f"{p.pid}\n")
    assert faults.clear_stale_pidfile(node)
    assert not (datadir / "postmaster.pid").exists() and not (tmp_path / ".s.PGSQL.5999.lock").exists()


def test_lock_file_of_a_live_process_is_kept(tmp_path) -> None:
    (tmp_path / "postmaster.pid").write_text(f"{os.getpid()}\n")
    node = SimpleNamespace(datadir=tmp_path, port=1, cluster=None)
    assert not faults.clear_stale_pidfile(node)
    assert (tmp_path / "postmaster.pid").exists()


def test_process_faults_need_a_local_node() -> None:
    with pytest.raises(Unsupported):
        faults.node_pids(SimpleNamespace(name="x", datadir=None))


def test_frozen_node_is_thawed_even_on_exception() -> None:
    calls: list[str] = []
    node = SimpleNamespace(freeze=lambda: calls.append("freeze"), thaw=lambda: calls.append("thaw"))
    with pytest.raises(RuntimeError):
        with faults.frozen(node):
            raise RuntimeError("drill broke")
    assert calls == ["freeze", "thaw"]
