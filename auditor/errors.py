"""Errors that reach the user as one line and exit code 3 (the tool could not audit)."""

from __future__ import annotations


class KpAuditError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 3


class InputError(KpAuditError):
    """A file or stream could not be read as what it claims to be.

    The message names the source and, where known, the line: ``FILE:LINE: problem``.
    """

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {problem}")
