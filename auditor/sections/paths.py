"""How many of kube-proxy's rules the first packet of a connection crosses, in each mode.

iptables mode dispatches Services with one rule per Service port in nat KUBE-SERVICES, so a
packet to the last Service compares its destination with every rule before it. nftables mode
looks the destination up in a verdict map: the count stays the same wherever the Service is.

The samples are the first, the middle and the last cluster-IP rule of nat KUBE-SERVICES.
Each packet (an outside client to the cluster IP) is traced through the iptables dumps; the
count is, per chain the packet enters, the rules up to the one it took (a chain it returns
from counts whole), over kube-proxy's chains only (KUBE-*, and the jump rules into them from
the built-in chains). The nftables count is traced the same way over table kube-proxy when
the node holds nftables state; otherwise it follows kube-proxy's nftables layout (v1.34,
`setupNFTables` and `syncProxyRules`) for the same Service: a prediction, marked as one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from auditor.check.context import CheckContext
from auditor.model import FrontendKind, IPFamily, Masquerade, ProxyMode, Result, ServiceModel, ServicePort
from auditor.parse.iptables_save import IptablesDump
from auditor.parse.nft_json import NftRuleset
from auditor.sections.sides import iptables_dumps_of, recorded_addresses
from auditor.trace import IptablesTracer, NftTracer, Step, TraceResult
from auditor.trace.packet import EXTERNAL_CLIENT, Hook, Packet, canonical_ip

_KUBELET_CHAINS = frozenset({"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"})
_IPT_TARGET = re.compile(r"\s-[jg]\s+(\S+)")
_NFT_TARGET = re.compile(r"\b(?:jump|goto)\s+([\w.-]+)")
_DEST = re.compile(r"\s-d\s+([0-9a-fA-F.:]+)(?:/(?:32|128))?\s")
_PROTO = re.compile(r"\s-p\s+(tcp|udp|sctp)\s")
_DPORT = re.compile(r"--dport\s+(\d+)")
_COMMENT = re.compile(r'--comment\s+"([^"]*)"|--comment\s+(\S+)')
_SVC_JUMP = re.compile(r"\s-j\s+KUBE-SVC-|\s-j\s+KUBE-SVL-")
_NFT_TABLE = "kube-proxy"

RulesOf = Callable[[str, str], Sequence[int] | None]


def count_crossed(path: Sequence[Step], rules_of: RulesOf, owned: Callable[[str, str], bool], target_re: re.Pattern[str]) -> int:
    """Rules of owned chains the packet crosses along `path` (see the module docstring)."""
    total = 0
    stack: list[list[Any]] = []  # [table, chain, position]

    def close(frame: list[Any], returned: bool) -> int:
        table, chain, pos = frame
        if not owned(table, chain):
            return 0
        return len(rules_of(table, chain) or ()) if returned else int(pos)

    for i, step in enumerate(path):
        ids = rules_of(step.table, step.chain) or ()
        if step.note == "chain policy":
            pos = len(ids)
        elif step.line == 0:
            pos = 1
        else:
            pos = _index(ids, step.line) + 1
        found = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][:2] == [step.table, step.chain]), None)
        if found is None:
            stack.append([step.table, step.chain, pos])
        else:
            for frame in stack[found + 1 :]:
                total += close(frame, returned=True)
            del stack[found + 1 :]
            stack[found][2] = max(stack[found][2], pos)
        match = target_re.search(" " + step.rule)
        target = match.group(1) if match else None
        if target is None:
            continue
        if not owned(step.table, step.chain) and owned(step.table, target):
            total += 1  # the built-in chain's jump into kube-proxy's chains
        following = path[i + 1] if i + 1 < len(path) else None
        entered = following is not None and (following.table, following.chain) == (step.table, target)
        if not entered and rules_of(step.table, target) is not None and owned(step.table, target):
            total += len(rules_of(step.table, target) or ())  # entered, nothing matched, returned
    return total + sum(close(frame, returned=False) for frame in stack)


def _index(ids: Sequence[int], line: int) -> int:
    try:
        return list(ids).index(line)
    except ValueError:
        return 0


# -- iptables ----------------------------------------------------------------------------------


def _iptables_rules(dump: IptablesDump) -> RulesOf:
    cache: dict[tuple[str, str], list[int] | None] = {}

    def rules_of(table: str, chain: str) -> list[int] | None:
        key = (table, chain)
        if key not in cache:
            found = dump.chain(table, chain)
            cache[key] = None if found is None else [line for line, _ in found.lines]
        return cache[key]

    return rules_of


def _iptables_owned(table: str, chain: str) -> bool:
    return chain.startswith("KUBE-") and chain not in _KUBELET_CHAINS


def service_samples(dump: IptablesDump) -> list[tuple[int, int, str, Packet]]:
    """(position, of, service, packet) for the first, middle and last cluster-IP rule of nat KUBE-SERVICES."""
    chain = dump.chain("nat", "KUBE-SERVICES")
    if chain is None:
        return []
    family = IPFamily.IPV6 if dump.ipv6 else IPFamily.IPV4
    rules: list[tuple[int, str, Packet]] = []
    for pos, (_, text) in enumerate(chain.lines, 1):
        padded = f" {text} "
        if not _SVC_JUMP.search(padded):
            continue
        dest, proto, port = _DEST.search(padded), _PROTO.search(padded), _DPORT.search(padded)
        if dest is None or port is None:
            continue
        comment = _COMMENT.search(padded)
        name = (comment.group(1) or comment.group(2)) if comment else ""
        name = name.removesuffix(" cluster IP")
        packet = Packet(family, proto.group(1) if proto else "tcp", EXTERNAL_CLIENT[family], canonical_ip(dest.group(1)), int(port.group(1)), Hook.PREROUTING)
        rules.append((pos, name, packet))
    if not rules:
        return []
    picks = sorted({0, len(rules) // 2, len(rules) - 1})
    return [(rules[i][0], len(chain.lines), rules[i][1], rules[i][2]) for i in picks]


# -- nftables ----------------------------------------------------------------------------------


def _nft_rules(ruleset: NftRuleset) -> RulesOf:
    index: dict[tuple[str, str], list[int]] = {}
    for table in ruleset.tables:
        for chain in table.chains.values():
            index[(table.label, chain.name)] = [r.handle for r in chain.rules]

    def rules_of(table: str, chain: str) -> list[int] | None:
        return index.get((table, chain))

    return rules_of


def _nft_owned(table: str, chain: str) -> bool:
    return table.split(" ", 1)[-1] == _NFT_TABLE


def predicted_nft_rules(frontend_masquerade: Masquerade | None, endpoints: int, affinity: bool) -> int:
    """kube-proxy's nftables rules a new connection from outside to a cluster IP with endpoints
    crosses (v1.34 layout), routed on to a pod:
    filter-prerouting-pre-dnat (jump firewall-check) + firewall-check (1 map lookup) = 2;
    nat-prerouting (jump services) + services (service-ips map) = 2;
    service chain: the masquerade rule, [mark-for-masquerade], affinity lookups, the numgen map;
    endpoint chain: its masquerade rule, [affinity update], the DNAT;
    filter-forward: 2 jumps + service-endpoints-check (1) + cluster-ips-check (2) = 5;
    nat-postrouting (jump masquerading) + masquerading (3 when marked, else 1)."""
    marked = frontend_masquerade in (Masquerade.ALL, Masquerade.OFF_CLUSTER)
    service_chain = (1 if frontend_masquerade is not Masquerade.NONE else 0) + (1 if marked else 0)
    service_chain += (endpoints if affinity else 0) + 1
    endpoint_chain = 2 + (1 if affinity else 0)
    return 2 + 2 + service_chain + endpoint_chain + 5 + 1 + (3 if marked else 1)


def _find_service(model: ServiceModel | None, packet: Packet) -> tuple[ServicePort | None, Any]:
    if model is None:
        return None, None
    for svc in model.services:
        if svc.family is not packet.family or svc.protocol.value != packet.protocol:
            continue
        for f in svc.frontends:
            if f.kind is FrontendKind.CLUSTER_IP and f.address == packet.dst and f.port == packet.dport:
                return svc, f
    return None, None


# -- the section -------------------------------------------------------------------------------


def _trace_count(tracer: IptablesTracer | NftTracer, packet: Packet, rules_of: RulesOf, owned: Callable[[str, str], bool], target_re: re.Pattern[str]) -> tuple[int, str]:
    result: TraceResult = tracer.trace(packet)
    if not result.branches:
        return 0, "no branch"
    branch = max(result.branches, key=lambda b: b.probability)
    return count_crossed(branch.path, rules_of, owned, target_re), result.summary


def paths_section(ctx: CheckContext) -> dict[str, Any] | None:
    """{"samples": [{service, position, of, packet, iptables: {rules, outcome}, nftables: {rules,
    outcome, predicted}}], "note"}; None without kube-proxy's iptables rules."""
    dumps = iptables_dumps_of(ctx)
    if not dumps:
        return None
    try:
        return _paths(ctx, dumps)
    except Exception as exc:  # a chart is not worth losing the report over
        return {"samples": [], "note": "", "error": f"{type(exc).__name__}: {exc}"}


def _paths(ctx: CheckContext, dumps: list[IptablesDump]) -> dict[str, Any] | None:
    dump = dumps[0]
    samples = service_samples(dump)
    if not samples:
        return None
    recorded = recorded_addresses(ctx) or ()
    local = tuple(a.split("/", 1)[0] for a in recorded)
    ipt = IptablesTracer(dumps, local)
    ipt_rules = _iptables_rules(dump)
    nft_model = ctx.models.get(ProxyMode.NFTABLES)
    nft = NftTracer(ctx.nft, local) if nft_model is not None and ctx.nft is not None else None
    nft_rules = _nft_rules(ctx.nft) if nft is not None and ctx.nft is not None else None
    ipt_model = ctx.models.get(ProxyMode.IPTABLES)
    out = []
    for position, of, name, packet in samples:
        ipt_count, ipt_outcome = _trace_count(ipt, packet, ipt_rules, _iptables_owned, _IPT_TARGET)
        if nft is not None and nft_rules is not None:
            nft_count, nft_outcome = _trace_count(nft, packet, nft_rules, _nft_owned, _NFT_TARGET)
            predicted = False
        else:
            _, frontend = _find_service(ipt_model, packet)
            ok = frontend is not None and frontend.result is Result.DNAT
            nft_count = predicted_nft_rules(
                frontend.masquerade if ok else None, len(frontend.endpoints) if ok else 1,
                bool(frontend.affinity_seconds) if ok else False,
            )
            nft_outcome = ipt_outcome
            predicted = True
        out.append(
            {
                "service": name,
                "position": position,
                "of": of,
                "packet": packet.text,
                "iptables": {"rules": ipt_count, "outcome": ipt_outcome},
                "nftables": {"rules": nft_count, "outcome": nft_outcome, "predicted": predicted},
            }
        )
    return {
        "samples": out,
        "note": "kube-proxy's rules the first packet of a new connection from outside crosses, to the first, a middle "
        "and the last Service in nat KUBE-SERVICES"
        + ("" if nft is not None else "; nftables counts follow kube-proxy's nftables layout (predicted)"),
    }


__all__ = ["count_crossed", "paths_section", "predicted_nft_rules", "service_samples"]
