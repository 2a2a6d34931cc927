"""Generated pairs with injected divergences: each is found, classified unexpected, and shown
with an example packet and the deciding rule on both sides. Without a change, a pair has no
unexpected difference. Mode pairs (iptables vs nftables) need a kernel for the nft side;
the same injections between two iptables dumps run anywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from auditor.diff import DifferenceKind, DiffResult, compare
from auditor.diff.compare import Side
from auditor.model import IPFamily
from auditor.synth.spec import NodeSpec, ServiceSpec, generate_node
from tests.diffcases import insert_before, iptables_side, nft_side

V4 = IPFamily.IPV4
NODE = generate_node(24, 3)
#: services of the generated node by shape (generate_node cycles through 12 shapes)
CLUSTER_IP, NODE_PORT, LB_RANGES_AFFINITY = NODE.services[0], NODE.services[1], NODE.services[3]


def with_service(node: NodeSpec, old: ServiceSpec, new: ServiceSpec | None) -> NodeSpec:
    services = tuple(s for s in (new if s == old else s for s in node.services) if s is not None)
    return replace(node, services=services)


def third_party_dnat(text: str) -> str:
    """A rule from another component that DNATs a ClusterIP before kube-proxy's jump."""
    rule = f"-A PREROUTING -d {CLUSTER_IP.cluster_ip}/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.99.0.1:80"
    return insert_before(text, "-A PREROUTING -m comment --comment \"kubernetes service portals\"", rule)


# name -> (right node or None, left text edit or None, the kind that must be found)
INJECTIONS: dict[str, tuple[NodeSpec | None, Callable[[str], str] | None, DifferenceKind]] = {
    "endpoint-missing": (
        with_service(NODE, CLUSTER_IP, replace(CLUSTER_IP, endpoints=CLUSTER_IP.endpoints[:-1])),
        None,
        DifferenceKind.ENDPOINT_REMOVED,
    ),
    "affinity-timeout": (
        with_service(NODE, LB_RANGES_AFFINITY, replace(LB_RANGES_AFFINITY, affinity_seconds=3600)),
        None,
        DifferenceKind.AFFINITY,
    ),
    "service-only-left": (with_service(NODE, CLUSTER_IP, None), None, DifferenceKind.SERVICE_ONLY_LEFT),
    "source-range-dropped": (
        with_service(NODE, LB_RANGES_AFFINITY, replace(LB_RANGES_AFFINITY, source_ranges=LB_RANGES_AFFINITY.source_ranges[:1])),
        None,
        DifferenceKind.SOURCE_RANGES,
    ),
    "node-port-moved": (
        with_service(NODE, NODE_PORT, replace(NODE_PORT, node_port=NODE_PORT.node_port + 900)),
        None,
        DifferenceKind.FRONTEND_ONLY_LEFT,
    ),
    "third-party-dnat": (None, third_party_dnat, DifferenceKind.OUTCOME),
}


def check_found(result: DiffResult, kind: DifferenceKind) -> None:
    found = [d for d in result.differences if d.kind is kind]
    assert found, f"{kind.value} not found in {[d.kind.value for d in result.differences]}"
    for d in found:
        assert not d.is_expected, d
        assert d.packet is not None, d
        assert d.left_rule is not None and d.right_rule is not None, d
        assert d.left_outcome and d.right_outcome
    assert all(not d.is_expected for d in result.differences if d.expected is None)


def left_and_right(name: str, right_side: Callable[[NodeSpec], Side]) -> tuple[Side, Side]:
    node, edit, _ = INJECTIONS[name]
    return iptables_side(NODE, "left", edit), right_side(node or NODE)


@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_injected_divergence_between_two_iptables_dumps(name: str) -> None:
    left, right = left_and_right(name, lambda n: iptables_side(n, "right"))
    result = compare(left, right)
    check_found(result, INJECTIONS[name][2])
    assert result.expected == 0


@pytest.mark.kernel
@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_injected_divergence_between_modes(name: str) -> None:
    left, right = left_and_right(name, lambda n: nft_side(n, "right"))
    result = compare(left, right)
    check_found(result, INJECTIONS[name][2])
    expected = {d.expected for d in result.differences if d.is_expected}
    assert expected <= {"health-check-accept", "localhost-node-ports", "kind-ambiguous-in-nftables", "cluster-ips-check"}


def test_third_party_dnat_evidence_names_its_rule() -> None:
    left, right = left_and_right("third-party-dnat", lambda n: iptables_side(n, "right"))
    (d,) = [d for d in compare(left, right).differences if d.kind is DifferenceKind.OUTCOME]
    assert d.left_rule is not None and "10.99.0.1" in d.left_rule.rule and d.left_rule.chain == "PREROUTING"
    assert d.right_rule is not None and d.right_rule.chain.startswith("KUBE-SEP-")
    assert d.packet is not None and d.packet.dst == CLUSTER_IP.cluster_ip


def test_node_port_moved_shows_both_frontends() -> None:
    left, right = left_and_right("node-port-moved", lambda n: iptables_side(n, "right"))
    kinds = {d.kind for d in compare(left, right).differences}
    assert {DifferenceKind.FRONTEND_ONLY_LEFT, DifferenceKind.FRONTEND_ONLY_RIGHT} <= kinds


def test_pair_without_change_is_clean() -> None:
    assert compare(iptables_side(NODE, "left"), iptables_side(NODE, "right")).differences == ()


@pytest.mark.kernel
@pytest.mark.parametrize("families", [(IPFamily.IPV4,), (IPFamily.IPV6,), (IPFamily.IPV4, IPFamily.IPV6)])
def test_mode_pair_without_change_has_only_expected_differences(families: tuple[IPFamily, ...]) -> None:
    node = generate_node(36, 2, families=families)
    result = compare(iptables_side(node), nft_side(node))
    assert result.unexpected == 0, [d.message for d in result.differences if not d.is_expected]
    names = {d.expected for d in result.differences}
    assert {"cluster-ips-check", "health-check-accept", "kind-ambiguous-in-nftables"} <= names


@pytest.mark.kernel
def test_lb_firewall_without_endpoints_is_expected() -> None:
    lb = replace(LB_RANGES_AFFINITY, endpoints=())
    node = with_service(NODE, LB_RANGES_AFFINITY, lb)
    result = compare(iptables_side(node), nft_side(node))
    assert result.unexpected == 0, [d.message for d in result.differences if not d.is_expected]
    assert "lb-firewall-without-endpoints" in {d.expected for d in result.differences}
