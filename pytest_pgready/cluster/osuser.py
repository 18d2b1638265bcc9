"""PostgreSQL refuses to run as root: when we are root, servers run as an unprivileged user.

Every path such a server touches must be reachable by that user, so the sandbox lives under
/tmp and /var/tmp, never under root's home; binaries it cannot reach are copied to the cache.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import PgReadyUsageError

SERVICE_USER = "pgready"


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.getuid()

    def popen_kwargs(self) -> dict[str, Any]:
        """Arguments for subprocess that run the child as this user (nothing when it is us)."""
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: Path) -> None:
        if not self.is_self:
            os.chown(path, self.uid, self.gid)

    def chown_tree(self, path: Path) -> None:
        if self.is_self:
            return
        for root, dirs, files in os.walk(path):
            os.chown(root, self.uid, self.gid)
            for n in dirs + files:
                os.lchown(os.path.join(root, n), self.uid, self.gid)


_cached: OsUser | None = None


def service_user() -> OsUser:
    """The user servers run as: ourselves, or (as root) a dedicated system user created on demand."""
    global _cached
    if _cached is not None:
        return _cached
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        _cached = OsUser(pw.pw_name, pw.pw_uid, pw.pw_gid)
        return _cached
    name = os.environ.get("PGREADY_SERVICE_USER", SERVICE_USER)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        r = subprocess.run([useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", name], capture_output=True, text=True, timeout=30)
        if r.returncode not in (0, 9):  # 9: exists (race with another worker)
            raise PgReadyUsageError(f"running as root, and the unprivileged user {name!r} could not be created "
                                    f"({r.stderr.strip()[:200]})",
                                    "create it (useradd --system pgready) or run pytest as a normal user")
        pw = pwd.getpwnam(name)
    _cached = OsUser(name, pw.pw_uid, pw.pw_gid)
    return _cached


def reachable_by_others(path: Path) -> bool:
    """True when every directory on the way is world-searchable and the file world-readable/executable."""
    p = path.resolve()
    for parent in [*reversed(p.parents)]:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    return bool(os.stat(p).st_mode & (stat.S_IROTH | stat.S_IXOTH))
