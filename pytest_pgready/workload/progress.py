"""A line on the terminal every few seconds during long runs, through pytest's output capture."""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable


def terminal_progress(config: Any) -> Callable[[str], None]:
    """Write progress lines to the real terminal (pytest captures the test's own stdout)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def emit(line: str) -> None:
        ctx = capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext()
        with ctx:
            if tr is not None:
                tr.write_line(line)
            else:
                sys.stderr.write(line + "\n")

    return emit
