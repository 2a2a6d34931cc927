"""Packet tracers for both modes: where the first packet of a new connection goes, and why.

`IptablesTracer` walks iptables-save dumps, `NftTracer` an `nft -j` ruleset; both return a
`TraceResult` (every branch with its probability, path and deciding rule). Constructs a
tracer cannot evaluate end a branch as `Verdict.UNKNOWN`, never as a guessed match.
"""

from __future__ import annotations

from typing import Protocol

from auditor.model import ProxyMode
from auditor.trace.iptables import IptablesTracer
from auditor.trace.nftables import NftTracer, native_tables
from auditor.trace.outcome import Branch, Step, TraceResult, Verdict
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, Packet


class Tracer(Protocol):
    """What the diff needs from a tracer."""

    mode: ProxyMode

    def trace(self, packet: Packet) -> TraceResult: ...


__all__ = [
    "EXTERNAL_CLIENT",
    "Branch",
    "Hook",
    "IptablesTracer",
    "NftTracer",
    "Packet",
    "Step",
    "TraceResult",
    "Tracer",
    "Verdict",
    "native_tables",
]
