"""The state of one branch while a tracer walks it (shared by both tracers)."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.trace.outcome import Branch, Step, Verdict
from auditor.trace.packet import Packet, canonical_ip, is_loopback

#: how deep jumps may nest before the trace gives up (a loop in the rules)
MAX_DEPTH = 64


class State:
    """A branch in progress: the packet as rewritten so far, its mark, path and probability."""

    __slots__ = (
        "affinity", "deciding", "dnat", "dnat_step", "dport", "dst", "mark", "masquerade", "path", "probability", "src",
    )

    def __init__(self, packet: Packet) -> None:
        self.src = packet.src
        self.dst = packet.dst
        self.dport = packet.dport
        self.mark = packet.mark
        self.probability = 1.0
        self.path: tuple[Step, ...] = ()
        self.dnat: tuple[str, int] | None = None
        self.masquerade = False
        self.affinity: int | None = None
        self.deciding: Step | None = None
        self.dnat_step: Step | None = None

    def copy(self) -> State:
        other = State.__new__(State)
        for name in State.__slots__:
            setattr(other, name, getattr(self, name))
        return other

    def step(self, step: Step) -> None:
        self.path = (*self.path, step)

    def split(self, probability: float) -> State:
        """A copy carrying `probability` of this branch's share (the taken side of a random match)."""
        other = self.copy()
        other.probability = self.probability * probability
        return other

    def branch(self, verdict: Verdict, delivery: str = "", reason: str = "") -> Branch:
        return Branch(
            probability=self.probability,
            verdict=verdict,
            path=self.path,
            deciding=self.dnat_step if verdict is Verdict.DNAT else self.deciding,
            endpoint=self.dnat,
            masquerade=self.masquerade,
            affinity_seconds=self.affinity,
            delivery=delivery,
            reason=reason,
        )


def settle(state: State, outcome: str, reason: str, alive: list[State], done: list[Branch]) -> None:
    """File a branch after a base chain: "accept"/"dnat" go on to the next hook or table,
    "drop"/"reject" end, anything else ends as unknown with its reason."""
    if outcome in ("accept", "dnat"):
        alive.append(state)
    elif outcome == "drop":
        done.append(state.branch(Verdict.DROP))
    elif outcome == "reject":
        done.append(state.branch(Verdict.REJECT))
    else:
        done.append(state.branch(Verdict.UNKNOWN, reason=reason))


class LocalAddresses:
    """The node's own addresses: `fib ... type local` and `-m addrtype LOCAL` test against these.

    Loopback addresses are always local. Everything else is local only when listed: the
    caller passes what the snapshot recorded (host.json) or what the rules themselves show.
    """

    def __init__(self, addresses: Iterable[str]) -> None:
        self.addresses = frozenset(canonical_ip(a.split("/", 1)[0]) for a in addresses)

    def __contains__(self, address: object) -> bool:
        return isinstance(address, str) and (is_loopback(address) or canonical_ip(address) in self.addresses)

    def __repr__(self) -> str:
        return f"LocalAddresses({sorted(self.addresses)})"


__all__ = ["MAX_DEPTH", "LocalAddresses", "State"]
