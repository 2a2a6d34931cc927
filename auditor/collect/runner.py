"""Running node commands: the `Runner` seam, its result type, and the real subprocess runner.

Collection code never calls `subprocess` itself: it takes a `Runner`, so tests pass a fake
that checks every argv (tests/fake_runner.py). A command that cannot run (missing binary,
timeout, permission denied) is a `CommandResult` with `error` set, never an exception: a
failed source is recorded and collection goes on.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

#: the default per-command time limit, in seconds (nft -j list ruleset of 10,000 services takes ~11 s)
DEFAULT_TIMEOUT = 60.0
#: where node tools live when PATH lacks them (a non-root shell often has no sbin on PATH)
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


class Failure(StrEnum):
    """Why a command produced no usable output."""

    #: the binary does not exist (on PATH, or at the path given)
    MISSING = "missing"
    TIMEOUT = "timeout"
    #: exec refused (EACCES/EPERM), or the tool said it needs privileges
    DENIED = "denied"
    #: it ran and exited non-zero
    EXIT = "exit"
    #: anything else the OS refused (ENOEXEC, ENOMEM ...)
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did. `error` is a one-line explanation when it gave no usable output."""

    argv: tuple[str, ...]
    returncode: int | None
    stdout: bytes
    stderr: bytes
    seconds: float
    error: str | None = None
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def missing(self) -> bool:
        return self.failure is Failure.MISSING

    def stderr_line(self) -> str:
        """The most telling line of stderr (the last non-empty one), clipped."""
        lines = [line.strip() for line in self.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        text = lines[-1] if lines else ""
        return text if len(text) <= 200 else text[:200] + "..."


class Runner(Protocol):
    """Runs one command with a time limit; never raises for a command that cannot run."""

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult: ...


_DENIED_MARKERS = ("permission denied", "operation not permitted", "you must be root")


def exit_failure(argv: Sequence[str], returncode: int, stdout: bytes, stderr: bytes, seconds: float) -> CommandResult:
    """The result of a command that exited non-zero, classified (permission problems are DENIED)."""
    result = CommandResult(tuple(argv), returncode, stdout, stderr, seconds)
    detail = result.stderr_line() or "no error output"
    if any(marker in detail.lower() for marker in _DENIED_MARKERS):
        return _with_error(result, f"permission denied ({detail}); run as root", Failure.DENIED)
    return _with_error(result, f"exit status {returncode}: {detail}", Failure.EXIT)


def _with_error(result: CommandResult, error: str, failure: Failure) -> CommandResult:
    return CommandResult(result.argv, result.returncode, result.stdout, result.stderr, result.seconds, error, failure)


class SubprocessRunner:
    """The real runner: no shell, stdin closed (or `input`), a time limit on every call.

    A bare command name not found on PATH is looked up in the sbin directories. Each
    command runs in its own session; on timeout the whole process group is killed (only
    the group this runner started).
    """

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                (_resolve(argv[0]), *argv[1:]),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=self._env,
            )
        except OSError as exc:
            return spawn_failure(argv, exc, time.monotonic() - start)
        try:
            stdout, stderr = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            return timeout_failure(argv, timeout, stdout, stderr, time.monotonic() - start)
        seconds = time.monotonic() - start
        if proc.returncode != 0:
            return exit_failure(argv, proc.returncode, stdout, stderr, seconds)
        return CommandResult(argv, 0, stdout, stderr, seconds)


def _resolve(name: str) -> str:
    if "/" in name or shutil.which(name):
        return name
    return shutil.which(name, path=os.pathsep.join(SBIN_DIRS)) or name


def timeout_failure(
    argv: Sequence[str], timeout: float, stdout: bytes = b"", stderr: bytes = b"", seconds: float = 0.0
) -> CommandResult:
    """The result of a command killed at its time limit."""
    result = CommandResult(tuple(argv), None, stdout, stderr, seconds or timeout)
    return _with_error(result, f"timed out after {timeout:g} s (killed)", Failure.TIMEOUT)


def spawn_failure(argv: Sequence[str], exc: OSError, seconds: float = 0.0) -> CommandResult:
    """The result of a command that could not start (missing binary, no permission ...)."""
    argv = tuple(argv)
    result = CommandResult(argv, None, b"", b"", seconds)
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
        where = "not found" if "/" in argv[0] else "not found on PATH"
        return _with_error(result, f"`{argv[0]}` {where}", Failure.MISSING)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return _with_error(result, f"permission denied executing `{argv[0]}`", Failure.DENIED)
    return _with_error(result, f"cannot run `{argv[0]}`: {exc.strerror or exc}", Failure.OTHER)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
