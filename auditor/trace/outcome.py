"""What a trace finds: each branch a packet can take, its probability, path and verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from auditor.model import PROBABILITY_TOLERANCE, ProxyMode, RuleRef
from auditor.trace.packet import Packet, host_port_text


class Verdict(StrEnum):
    """How a branch ends."""

    #: destination rewritten to a Service endpoint
    DNAT = "dnat"
    #: not rewritten, and nothing dropped it: delivered to the node or routed on unchanged
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"
    #: a construct the tracer cannot evaluate decided the packet's fate: never a guess
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Step:
    """One rule (or policy, or map element) on the path: where it is and what it did."""

    table: str
    chain: str
    #: iptables-save line, nft rule handle; 0 for a chain policy or an implied rule
    line: int
    rule: str
    note: str = ""
    source: str = ""

    @property
    def ref(self) -> RuleRef:
        return RuleRef(self.table, self.chain, self.line, self.rule, self.source)

    @property
    def text(self) -> str:
        where = f"{self.table} {self.chain}" + (f" #{self.line}" if self.line else "")
        note = f"  [{self.note}]" if self.note else ""
        return f"{where}: {self.rule}{note}"


@dataclass(frozen=True, slots=True)
class Branch:
    """One way the packet goes; probabilities of a result's branches add up to 1."""

    probability: float
    verdict: Verdict
    path: tuple[Step, ...]
    #: the rule that settled the verdict (the DNAT, the DROP/REJECT, the accepting rule or policy)
    deciding: Step | None = None
    endpoint: tuple[str, int] | None = None
    #: source NAT applies on the way out (kube-proxy's masquerade mark, then MASQUERADE)
    masquerade: bool = False
    #: session-affinity timeout of the affinity check the branch passed, if any
    affinity_seconds: int | None = None
    #: "local" (delivered to the node) or "forward" (routed on), for accepted and DNATed packets
    delivery: str = ""
    #: for UNKNOWN: what could not be evaluated
    reason: str = ""

    @property
    def label(self) -> str:
        """`dnat 10.0.0.1:80`, `accept (local)`, `drop`, `unknown`."""
        if self.verdict is Verdict.DNAT and self.endpoint is not None:
            return f"dnat {host_port_text(*self.endpoint)}"
        if self.verdict is Verdict.ACCEPT and self.delivery:
            return f"accept ({self.delivery})"
        return self.verdict.value


@dataclass(frozen=True, slots=True)
class TraceResult:
    """Every branch of one packet through one mode's rules."""

    packet: Packet
    mode: ProxyMode
    branches: tuple[Branch, ...]
    #: facts the trace relied on (implied jumps, empty dynamic sets, skipped tables)
    notes: tuple[str, ...] = field(default=())

    @property
    def unknown(self) -> bool:
        return any(b.verdict is Verdict.UNKNOWN for b in self.branches)

    def distribution(self) -> dict[str, float]:
        """Outcome label -> probability, in first-seen order."""
        out: dict[str, float] = {}
        for b in self.branches:
            out[b.label] = out.get(b.label, 0.0) + b.probability
        return out

    def endpoints(self) -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = {}
        for b in self.branches:
            if b.verdict is Verdict.DNAT and b.endpoint is not None:
                out[b.endpoint] = out.get(b.endpoint, 0.0) + b.probability
        return out

    def verdicts(self) -> set[Verdict]:
        return {b.verdict for b in self.branches}

    @property
    def summary(self) -> str:
        """`dnat 10.0.0.1:80 (p=0.5), dnat 10.0.0.2:80 (p=0.5)`; masquerade noted when it applies."""
        parts = []
        masq = {b.masquerade for b in self.branches if b.verdict in (Verdict.DNAT, Verdict.ACCEPT)}
        for label, p in self.distribution().items():
            parts.append(label if abs(p - 1.0) <= PROBABILITY_TOLERANCE else f"{label} (p={p:.4g})")
        text = ", ".join(parts)
        if masq == {True}:
            text += ", masqueraded"
        return text

    @property
    def deciding(self) -> Step | None:
        """The deciding rule of the first branch (the most likely one when they differ)."""
        if not self.branches:
            return None
        return max(self.branches, key=lambda b: b.probability).deciding


__all__ = ["Branch", "Step", "TraceResult", "Verdict"]
