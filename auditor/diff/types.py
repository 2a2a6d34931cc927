"""What the diff reports: typed, frozen differences, each with an example packet and the
deciding rule on each side (in the manner of Batfish's compareFilters)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from auditor.model import ProxyMode, RuleRef
from auditor.trace.packet import Packet

#: (Service port name, protocol, family), as `ServicePort.key`
ServiceKey = tuple[str, str, str]
#: (frontend kind, address or None for a NodePort, port)
FrontendKey = tuple[str, str | None, int]


class Classification(StrEnum):
    #: a deliberate difference between the modes, with its reason and source
    EXPECTED = "expected"
    #: anything else: fails the CI gate (exit 2)
    UNEXPECTED = "unexpected"


class DifferenceKind(StrEnum):
    """What differs. "left"/"right" name the side that has the thing."""

    SERVICE_ONLY_LEFT = "service-only-left"
    SERVICE_ONLY_RIGHT = "service-only-right"
    FRONTEND_ONLY_LEFT = "frontend-only-left"
    FRONTEND_ONLY_RIGHT = "frontend-only-right"
    FRONTEND_KIND = "frontend-kind"
    ENDPOINT_ADDED = "endpoint-added"
    ENDPOINT_REMOVED = "endpoint-removed"
    PROBABILITY = "probability"
    RESULT = "result"
    AFFINITY = "affinity"
    SOURCE_RANGES = "source-ranges"
    LOCAL_POLICY = "local-policy"
    MASQUERADE = "masquerade"
    NODE_PORT_ADDRESSES = "node-port-addresses"
    LOCALHOST_NODE_PORTS = "localhost-node-ports"
    HEALTH_CHECK_NODE_PORTS = "health-check-node-ports"
    LOCAL_TRAFFIC = "local-traffic-detector"
    #: the rules treat a packet differently although the models agree (found by tracing)
    OUTCOME = "outcome"
    CLUSTER_IP_UNUSED_PORT = "cluster-ip-unused-port"
    UNALLOCATED_SERVICE_IP = "unallocated-service-ip"


@dataclass(frozen=True, slots=True)
class SideInfo:
    """One side of a comparison, as reports name it."""

    label: str
    mode: ProxyMode


@dataclass(frozen=True, slots=True)
class Difference:
    """One difference between the left and the right side."""

    kind: DifferenceKind
    message: str
    service: ServiceKey | None = None
    frontend: FrontendKey | None = None
    #: (address, port) of the endpoint an endpoint or probability difference is about
    endpoint: tuple[str, int] | None = None
    #: the left and right values (JSON-friendly: str, int, float, bool, tuples, None)
    left: Any = None
    right: Any = None
    classification: Classification = Classification.UNEXPECTED
    #: the name of the deliberate difference ("node-port-addresses", ...) when expected
    expected: str | None = None
    reason: str = ""
    source: str = ""
    #: a packet that shows the difference, or why there is none
    packet: Packet | None = None
    packet_note: str = ""
    left_rule: RuleRef | None = None
    right_rule: RuleRef | None = None
    #: what happens to `packet` on each side (from a trace, else from the model)
    left_outcome: str = ""
    right_outcome: str = ""
    #: why a side has no deciding rule, when one has none
    rule_note: str = ""

    @property
    def is_expected(self) -> bool:
        return self.classification is Classification.EXPECTED

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        service = " ".join(self.service) if self.service else ""
        frontend = " ".join(str(x) for x in self.frontend) if self.frontend else ""
        return (0 if not self.is_expected else 1, service, frontend, self.kind.value)


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Both sides and every difference, unexpected first."""

    left: SideInfo
    right: SideInfo
    differences: tuple[Difference, ...]
    notes: tuple[str, ...] = ()

    @property
    def expected(self) -> int:
        return sum(1 for d in self.differences if d.is_expected)

    @property
    def unexpected(self) -> int:
        return len(self.differences) - self.expected


__all__ = [
    "Classification",
    "DiffResult",
    "Difference",
    "DifferenceKind",
    "FrontendKey",
    "ServiceKey",
    "SideInfo",
]
