"""Example packets for a model's frontends, and whether a trace agrees with the model.

The model describes a frontend's outcome for a new connection from outside the cluster
(and, with source ranges, from an allowed source). `frontend_packet` builds exactly that
packet; `model_mismatches` says where a trace of it disagrees with the model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from auditor.model import PROBABILITY_TOLERANCE, Frontend, IPFamily, Masquerade, Result, ServiceModel, ServicePort
from auditor.trace.outcome import TraceResult, Verdict
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, Packet, canonical_ip, family_of, in_network, is_loopback

_RESULT_VERDICT = {Result.DNAT: Verdict.DNAT, Result.DROP: Verdict.DROP, Result.REJECT: Verdict.REJECT}


def client_for(frontend: Frontend, family: IPFamily) -> str:
    """A client outside the cluster that the frontend's source ranges allow."""
    default = EXTERNAL_CLIENT[family]
    ranges = [r for r in frontend.source_ranges if family_of(r) is family]
    if not ranges or any(in_network(default, r) for r in ranges):
        return default
    for text in ranges:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if net.num_addresses > 2:
            return str(net.network_address + 1)
        return str(net.network_address)
    return default


def node_address(model: ServiceModel, family: IPFamily, local_addresses: Iterable[str] = ()) -> str | None:
    """An address where the model's NodePorts answer: a listed one, else (for "local") the
    first non-loopback node address of the family."""
    for entry in model.node_port_addresses:
        if entry != "local" and family_of(entry) is family and "/" not in entry and not is_loopback(entry):
            return canonical_ip(entry)
    if "local" in model.node_port_addresses or any("/" in e for e in model.node_port_addresses):
        for address in local_addresses:
            address = address.split("/", 1)[0]
            if family_of(address) is not family or is_loopback(address):
                continue
            served = "local" in model.node_port_addresses or any(
                in_network(address, e) for e in model.node_port_addresses if "/" in e
            )
            if served:
                return canonical_ip(address)
    return None


def frontend_packet(
    svc: ServicePort, frontend: Frontend, node: str | None, hook: Hook = Hook.PREROUTING
) -> Packet | None:
    """The first packet of a connection from outside to this frontend; None for a NodePort
    when no node address is known."""
    dst = frontend.address if frontend.address is not None else node
    if dst is None:
        return None
    return Packet(svc.family, svc.protocol.value, client_for(frontend, svc.family), dst, frontend.port, hook)


def model_mismatches(result: TraceResult, frontend: Frontend) -> list[str]:
    """Where a trace of `frontend_packet` disagrees with the model (empty: it agrees)."""
    problems: list[str] = []
    unknown = [b for b in result.branches if b.verdict is Verdict.UNKNOWN]
    if unknown:
        return [f"trace is unknown: {unknown[0].reason}"]
    want = _RESULT_VERDICT[frontend.result]
    verdicts = result.verdicts()
    if verdicts != {want}:
        return [f"model says {frontend.result.value}, trace gives {result.summary}"]
    if frontend.result is not Result.DNAT:
        return problems
    traced = result.endpoints()
    modelled = {(e.address, e.port): e.probability for e in frontend.endpoints}
    for key in sorted(set(traced) | set(modelled)):
        if abs(traced.get(key, 0.0) - modelled.get(key, 0.0)) > PROBABILITY_TOLERANCE:
            problems.append(f"endpoint {key[0]}:{key[1]}: model p={modelled.get(key, 0.0):.6g}, trace p={traced.get(key, 0.0):.6g}")
    masquerade = frontend.masquerade in (Masquerade.ALL, Masquerade.OFF_CLUSTER)
    if any(b.masquerade != masquerade for b in result.branches):
        problems.append(f"model masquerade {frontend.masquerade.value}, trace masquerades: {result.branches[0].masquerade}")
    affinity = {b.affinity_seconds for b in result.branches}
    if affinity != {frontend.affinity_seconds}:
        problems.append(f"model affinity {frontend.affinity_seconds}, trace {sorted(affinity, key=str)}")
    return problems


__all__ = ["client_for", "frontend_packet", "model_mismatches", "node_address"]
