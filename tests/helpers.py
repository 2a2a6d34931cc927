"""Shared test helpers: the reference data in ../shared, and throwaway network namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KP_AUDIT_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "kube-proxy-reference"
DATASETS = ("overall", "repeated-initial")


def reference(name: str) -> Path:
    """A file of ../shared/kube-proxy-reference; skips the test when the folder is absent."""
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"reference data not found at {path} (set KP_AUDIT_SHARED to the shared folder)")
    return path


def kernel_skip_reason(*tools: str) -> str | None:
    """Why live-kernel tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", *tools):
        if shutil.which(tool) is None:
            return f"{tool} not installed (make test installs it when run as root on Debian)"
    return None


def require_kernel(*tools: str) -> None:
    reason = kernel_skip_reason(*tools)
    if reason:
        pytest.skip(reason)


class Namespace:
    """A throwaway network namespace; every command runs inside it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(
        self, argv: Sequence[str], stdin: str | bytes | None = None, check: bool = True, timeout: float = 120
    ) -> str:
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(
            ["ip", "netns", "exec", self.name, *argv], input=data, capture_output=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed in {self.name} (rc={proc.returncode}): {proc.stderr.decode()[-2000:]}"
            )
        return proc.stdout.decode()


@contextmanager
def namespace(prefix: str = "kpa-test") -> Iterator[Namespace]:
    """Create a uniquely named namespace with loopback up; delete it whatever happens."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
        yield Namespace(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
