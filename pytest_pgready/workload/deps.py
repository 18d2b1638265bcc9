"""Optional dependencies of the load and pooling checks: missing ones make those checks na, with the fix."""

from __future__ import annotations

import importlib.util

HINT = "pip install 'pytest-pgready[load]'"


def require(*modules: str, what: str = "the load checks") -> None:
    """Raise cluster.model.Unsupported (→ na) when a module is not installed; never imports it."""
    from ..cluster.model import Unsupported

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise Unsupported(f"{what} need {', '.join(missing)} (not installed): {HINT}")
