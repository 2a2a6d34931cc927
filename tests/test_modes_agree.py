"""The same cluster, seen through kube-proxy's iptables rules and its nftables rules, is the
same set of Services: every frontend, endpoint, probability (to 1e-6), affinity and source
range agrees. The only differences allowed are listed in `ALLOWED` with their reason, and
each one must really show up where expected, so the list cannot grow silently.
"""

from __future__ import annotations

import pytest

from auditor.model import PROBABILITY_TOLERANCE, Frontend, FrontendKind, Result, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.normalize.nftables import normalize_nftables
from auditor.parse.iptables_save import read_iptables_save
from auditor.parse.nft_json import read_nft_json
from tests.helpers import reference

#: difference -> why the two modes legitimately disagree
ALLOWED = {
    "node_port_addresses": "node-level: comes from each proxier's --nodeport-addresses, not from the Services "
    "(the reference fake proxiers differ: all local addresses for iptables, 192.168.0.2/32 for nftables)",
    "localhost_node_ports": "iptables mode answers NodePorts on 127.0.0.0/8 (route_localnet); nftables mode has no "
    "localhost NodePorts",
    "health_check_node_ports": "iptables mode ACCEPTs each healthCheckNodePort in filter KUBE-NODEPORTS; nftables "
    "mode writes no rule for them",
    "kind_uncertain": "nftables sends external IPs and load-balancer IPs without source ranges through the same "
    "`goto external-...` map element, so it reports external-ip with kind_certain=False where iptables "
    "knows the kind from its rule comment",
    "source_range_order": "nft keeps a firewall chain's `ip saddr != { ... }` as an interval set and prints it "
    "sorted by address; iptables keeps kube-proxy's order (one -s rule per range)",
    "reject_keeps_firewall": "nftables mode writes a load balancer's firewall (and firewall-ips element) even when "
    "the Service has no endpoints, so its REJECT carries source ranges and a certain load-balancer kind; "
    "iptables mode writes KUBE-FW only with endpoints, and its bare filter REJECT cannot tell a load balancer "
    "from an external IP (kind_certain=False)",
    "rule_counts": "rules_seen / rules_modelled / unmodelled count each mode's own rules",
}

#: the differences each reference dataset must show (the others must not appear)
EXPECTED_IN_REFERENCE = {
    "overall": {
        "node_port_addresses",
        "localhost_node_ports",
        "health_check_node_ports",
        "kind_uncertain",
        "rule_counts",
    },
    "repeated-initial": {"node_port_addresses", "localhost_node_ports", "rule_counts"},
}
IPTABLES_DUMPS = ("iptables-save.txt", "iptables-save.roundtrip-nft.txt", "iptables-save.roundtrip-legacy.txt")


def frontend_key(f: Frontend) -> tuple[str, str | None, int]:
    """Frontends pair up by where they answer; the kind may be the difference."""
    group = (
        "node-port"
        if f.kind is FrontendKind.NODE_PORT
        else "cluster"
        if f.kind is FrontendKind.CLUSTER_IP
        else "external"
    )
    return (group, f.address, f.port)


def compare_frontends(ipt: Frontend, nft: Frontend, where: str, seen: set[str]) -> None:
    """Assert two frontends agree up to the allowed differences; record which ones showed up."""
    firewall_only_in_nft = (
        nft.kind is FrontendKind.LOAD_BALANCER
        and nft.kind_certain
        and nft.source_ranges
        and nft.result is Result.REJECT
        and not ipt.source_ranges
        and (ipt.kind is FrontendKind.LOAD_BALANCER or not ipt.kind_certain)
    )
    if firewall_only_in_nft:
        # iptables has only its filter REJECT here, which cannot tell a load balancer from an external IP
        seen.add("reject_keeps_firewall")
    elif nft.kind is not ipt.kind or nft.kind_certain != ipt.kind_certain:
        assert nft.kind is FrontendKind.EXTERNAL_IP and not nft.kind_certain, f"{where}: {ipt.kind} vs {nft.kind}"
        assert ipt.kind in (FrontendKind.EXTERNAL_IP, FrontendKind.LOAD_BALANCER) and ipt.kind_certain, where
        assert not nft.source_ranges, f"{where}: a firewalled load balancer is certain in nftables mode"
        seen.add("kind_uncertain")
    if not firewall_only_in_nft and tuple(sorted(ipt.source_ranges)) != tuple(sorted(nft.source_ranges)):
        raise AssertionError(f"{where}: source ranges {ipt.source_ranges} vs {nft.source_ranges}")
    if ipt.source_ranges and ipt.source_ranges != nft.source_ranges:
        seen.add("source_range_order")
    for field in ("port", "result", "affinity_seconds", "local_only", "masquerade", "short_circuit"):
        assert getattr(ipt, field) == getattr(nft, field), (
            f"{where}: {field} {getattr(ipt, field)} vs {getattr(nft, field)}"
        )
    assert [(e.address, e.port) for e in ipt.endpoints] == [(e.address, e.port) for e in nft.endpoints], (
        f"{where}: endpoints"
    )
    for a, b in zip(ipt.endpoints, nft.endpoints, strict=True):
        assert abs(a.probability - b.probability) <= PROBABILITY_TOLERANCE, f"{where}: {a} vs {b}"


def compare_models(ipt: ServiceModel, nft: ServiceModel) -> set[str]:
    """Assert the two modes' models agree up to `ALLOWED`; return the differences seen."""
    seen: set[str] = set()
    assert [s.key for s in ipt.services] == [s.key for s in nft.services]
    for a, b in zip(ipt.services, nft.services, strict=True):
        fa = {frontend_key(f): f for f in a.frontends}
        fb = {frontend_key(f): f for f in b.frontends}
        assert sorted(fa, key=str) == sorted(fb, key=str), (
            f"{a.name}: frontends {sorted(fa, key=str)} vs {sorted(fb, key=str)}"
        )
        for key, f in fa.items():
            compare_frontends(f, fb[key], f"{a.name} {key}", seen)
    assert ipt.local_traffic == nft.local_traffic and ipt.families == nft.families
    for field in ("node_port_addresses", "localhost_node_ports", "health_check_node_ports"):
        if getattr(ipt, field) != getattr(nft, field):
            seen.add(field)
    if (ipt.rules_seen, ipt.rules_modelled, ipt.unmodelled) != (nft.rules_seen, nft.rules_modelled, nft.unmodelled):
        seen.add("rule_counts")
    assert seen <= set(ALLOWED)
    return seen


@pytest.mark.parametrize("dump", IPTABLES_DUMPS)
@pytest.mark.parametrize("dataset", sorted(EXPECTED_IN_REFERENCE))
def test_reference_modes_agree(dataset: str, dump: str) -> None:
    ipt = normalize_iptables([read_iptables_save(str(reference(f"{dataset}.{dump}")))])
    nft = normalize_nftables(read_nft_json(str(reference(f"{dataset}.nft.json"))), require_table=True)
    assert ipt.unmodelled == () and nft.unmodelled == ()
    assert compare_models(ipt, nft) == EXPECTED_IN_REFERENCE[dataset]
    # the node-level differences are exactly the known configuration facts
    assert (ipt.node_port_addresses, nft.node_port_addresses) == (("local",), ("192.168.0.2",))
    assert ipt.localhost_node_ports and not nft.localhost_node_ports and nft.health_check_node_ports == ()


def test_kind_uncertainty_is_exactly_the_unfirewalled_external_addresses() -> None:
    nft = normalize_nftables(read_nft_json(str(reference("overall.nft.json"))))
    uncertain = sorted((s.name, f.address) for s in nft.services for f in s.frontends if not f.kind_certain)
    assert uncertain == [
        ("ns2/svc2:p80", "1.2.3.4"),
        ("ns2/svc2:p80", "192.168.99.22"),
        ("ns4/svc4:p80", "192.168.99.33"),
    ]


def test_a_real_difference_is_caught() -> None:
    """The comparison is not vacuous: a changed endpoint fails it."""
    from dataclasses import replace

    ipt = normalize_iptables([read_iptables_save(str(reference("overall.iptables-save.txt")))])
    nft = normalize_nftables(read_nft_json(str(reference("overall.nft.json"))))
    svc = nft.services[0]
    broken = replace(svc.frontends[0], endpoints=(replace(svc.frontends[0].endpoints[0], port=81),))
    changed = replace(nft, services=(replace(svc, frontends=(broken,)), *nft.services[1:]))
    with pytest.raises(AssertionError, match="endpoints"):
        compare_models(ipt, changed)
