"""The sources a snapshot is built from, and the record each leaves in meta.json.

A source is one command or file read on the node. Two groups are required: the iptables
state (any `*-save` backend that could be read) and the nftables state (`nft -j list
ruleset`). Every other source is best effort: its failure is recorded and shown, and the
checks that need it say so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from auditor.collect.runner import CommandResult, Failure


class Required(StrEnum):
    """A required group of sources: the snapshot is incomplete when the group failed."""

    IPTABLES = "iptables"
    NFTABLES = "nftables"


@dataclass(frozen=True, slots=True)
class IptablesSave:
    """One of the four `*-save` dumps: its source name is also its binary and its file stem."""

    name: str
    backend: str
    ipv6: bool

    @property
    def file(self) -> str:
        return f"{self.name}.txt"


#: in the order they are collected and read
IPTABLES_SAVES = (
    IptablesSave("iptables-legacy-save", "legacy", False),
    IptablesSave("iptables-nft-save", "nft", False),
    IptablesSave("ip6tables-legacy-save", "legacy", True),
    IptablesSave("ip6tables-nft-save", "nft", True),
)
NFTABLES = "nftables"
NFT_RULESET_FILE = "nft-ruleset.json"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One entry of meta.json `sources`."""

    name: str
    command: tuple[str, ...]
    ok: bool
    error: str | None = None
    seconds: float = 0.0
    #: the binary does not exist on the node (an iptables backend that is not installed)
    absent: bool = False
    #: the snapshot file holding the output, when there is one
    file: str | None = None
    #: a remark that is not an error (e.g. why a command was not run)
    note: str | None = None
    required: Required | None = None
    #: how the data was read when not by `command` alone (e.g. "python-iptables")
    method: str | None = None

    @property
    def failed(self) -> bool:
        return not self.ok and not self.absent

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "command": list(self.command),
            "ok": self.ok,
            "error": self.error,
            "seconds": round(self.seconds, 6),
            "absent": self.absent,
            "file": self.file,
            "note": self.note,
            "required": None if self.required is None else self.required.value,
        }
        if self.method is not None:
            data["method"] = self.method
        return data


def from_command(
    name: str,
    result: CommandResult,
    *,
    file: str | None = None,
    required: Required | None = None,
    absent_ok: bool = False,
    hint: str | None = None,
) -> SourceRecord:
    """The record of a command source. `absent_ok`: a missing binary is "absent", not a failure.

    `hint` is appended to a failure, so the line says how to fix it (a timeout always gets
    one: raise --timeout).
    """
    if result.ok:
        return SourceRecord(name, result.argv, True, None, result.seconds, file=file, required=required)
    absent = absent_ok and result.missing
    error = result.error or "failed"
    if result.failure is Failure.TIMEOUT and hint is None:
        hint = "raise --timeout if the node is just slow"
    if hint and not absent:
        error = f"{error}; {hint}"
    return SourceRecord(name, result.argv, False, error, result.seconds, absent=absent, required=required)


@dataclass(frozen=True, slots=True)
class Collected:
    """A source's record, the value it produced, and the bytes to store (if any)."""

    record: SourceRecord
    value: Any = None
    data: bytes | None = None


class Stopwatch:
    """Seconds since creation, for sources that are file reads rather than commands."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._start


def read_command(path: str) -> tuple[str, ...]:
    """The `command` meta.json shows for a file read."""
    return ("read", path)
