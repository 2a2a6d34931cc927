"""Reading an input file (or standard input) for a parser, with errors that name it."""

from __future__ import annotations

import sys

from auditor.errors import InputError


def read_source(path: str) -> bytes:
    """The bytes of `path`; `-` is standard input. A missing or unreadable file is an `InputError`."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from exc
