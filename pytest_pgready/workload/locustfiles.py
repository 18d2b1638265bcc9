"""Which locustfile a run uses, and the checks on it that need no Locust import (the pytest process)."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import PgReadyUsageError

BUILTIN = ("point", "tpcb", "app", "select1")


class LoadError(PgReadyUsageError):
    """A load run could not start or finish: rendered as one line (`pgready: load: …`)."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"load: {problem}", fix)


def load_dir() -> Path:
    from ..plugin import shipped_dir

    return shipped_dir("load")


def builtin(name: str) -> Path:
    if name not in BUILTIN:
        raise LoadError(f"unknown built-in workload {name!r}", f"use one of: {', '.join(BUILTIN[:3])}")
    return load_dir() / f"{name}.py"


def resolve(settings: object) -> Path:
    """The user's --pgready-locustfile, else the built-in workload named by settings.workload."""
    own = getattr(settings, "locustfile", None)
    return Path(own) if own else builtin(getattr(settings, "workload", "point"))


def check_locustfile(path: Path) -> None:
    """A missing file or a syntax error is one clear line before any process starts."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError(f"locustfile {path} does not exist", "give --pgready-locustfile an existing .py file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise LoadError(f"cannot read locustfile {path} ({e.__class__.__name__})", "fix its permissions") from None
    try:
        tree = ast.parse(text, filename=str(path))
    except SyntaxError as e:
        raise LoadError(f"locustfile {Path(path).name} line {e.lineno}: SyntaxError: {e.msg}",
                        "fix the Python syntax") from None
    if not any(isinstance(n, ast.ClassDef) for n in ast.walk(tree)):
        raise LoadError(f"locustfile {Path(path).name} defines no class",
                        "define a class that subclasses pytest_pgready.workload.user.PgUser (see docs/load.md)")
