"""Helpers for the benchmarks: best-of-N timing, throwaway namespaces, printing figures."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def best_of(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Fastest wall time of `repeat` runs: the least disturbed by a noisy machine.

    The result is kept until the clock has stopped, so freeing it is not timed (for the
    reference and the code under test alike).
    """
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def can_use_kernel(*tools: str) -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", *tools))


@contextmanager
def namespace(prefix: str = "kpa-bench") -> Iterator[str]:
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_namespace(ns: str, argv: list[str], stdin: bytes | None = None) -> bytes:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, check=True).stdout
