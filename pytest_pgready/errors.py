"""One exception for every user mistake: it prints as a single line naming the problem and the fix."""

from __future__ import annotations


class PgReadyUsageError(Exception):
    """Bad input from the user (option, file, DSN, binary). Rendered as one line, never a traceback."""

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        msg = f"pgready: {self.problem}"
        if self.fix:
            msg += f" — {self.fix}"
        return msg
