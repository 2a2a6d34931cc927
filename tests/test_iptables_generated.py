"""The generator's iptables form, normalized, is the model the generator meant (no kernel)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auditor.model import IPFamily, ProxyMode
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.synth.expected import expected_model
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import NodeSpec, generate_node
from tests.modelcmp import assert_same_node_facts, assert_same_services

V4, V6 = IPFamily.IPV4, IPFamily.IPV6

NODES = {
    "ipv4-varied": generate_node(48, 3),
    "ipv6-varied": generate_node(36, 2, families=(V6,)),
    "dual-stack": generate_node(24, 2, families=(V4, V6)),
    "large-cluster-no-comments": generate_node(40, 30),
    "masquerade-all": generate_node(24, 2, masquerade_all=True),
    "nodeport-addresses": generate_node(24, 2, node_port_addresses=("192.168.0.2", "10.0.0.7")),
    "no-localhost-nodeports": generate_node(24, 2, localhost_node_ports=False, nfacct=False),
    "tcp-be-liberal": generate_node(12, 2, conntrack_tcp_be_liberal=True),
}


def normalized(node: NodeSpec, jump_rules: bool = True):
    dumps = [
        parse_iptables_save(
            render_iptables(node, family, jump_rules=jump_rules), source=f"gen-{family}", ipv6=family is V6
        )
        for family in node.families
    ]
    return normalize_iptables(dumps)


@pytest.mark.parametrize("name", sorted(NODES))
def test_generated_node_matches_expected_model(name: str) -> None:
    node = NODES[name]
    model = normalized(node)
    expected = expected_model(node, ProxyMode.IPTABLES)
    assert_same_services(model, expected)
    assert_same_node_facts(model, expected)
    assert model.unmodelled == (), model.unmodelled[:3]
    assert model.rules_modelled == model.rules_seen > 0


def test_large_cluster_mode_really_has_no_endpoint_comments() -> None:
    node = NODES["large-cluster-no-comments"]
    assert node.large_cluster
    text = render_iptables(node, V4)
    sep_rules = [line for line in text.splitlines() if line.startswith("-A KUBE-SEP-")]
    assert sep_rules and not any("--comment" in line for line in sep_rules)


def test_every_shape_is_generated() -> None:
    """The varied node really covers what the issue lists (else the tests above prove less)."""
    node = NODES["ipv4-varied"]
    svcs = node.services
    assert any(s.external_ips for s in svcs) and any(s.load_balancer_ips for s in svcs)
    assert any(s.source_ranges for s in svcs) and any(s.affinity_seconds for s in svcs)
    assert any(s.external_local and s.local_endpoints for s in svcs)
    assert any(s.external_local and not s.local_endpoints and s.endpoints for s in svcs)
    assert any(s.internal_local and s.local_endpoints for s in svcs)
    assert any(s.internal_local and not s.local_endpoints for s in svcs)
    assert any(not s.endpoints for s in svcs) and any(s.node_port for s in svcs)
    assert {s.protocol.value for s in svcs} == {"tcp", "udp", "sctp"}
    assert any(s.port_name == "" for s in svcs)


def test_without_builtin_jumps_still_models_everything() -> None:
    """kube-proxy's own restore input has no jumps from built-in chains (they are added apart)."""
    node = NODES["ipv4-varied"]
    assert_same_services(normalized(node, jump_rules=False), expected_model(node, ProxyMode.IPTABLES))


def test_foreign_rules_are_unmodelled_not_ignored() -> None:
    text = render_iptables(generate_node(6, 2), V4)
    svc_chain = next(line.split()[1] for line in text.splitlines() if line.startswith("-A KUBE-SVC-"))
    text = _in_nat(
        text,
        ":DOCKER - [0:0]\n",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n"
        "-A DOCKER -d 172.17.0.2/32 -p tcp -j DNAT --to-destination 172.17.0.2:80\n",
    ).replace(f"-A {svc_chain} ", f"-A {svc_chain} -m mark --mark 0x1 -j ACCEPT\n-A {svc_chain} ", 1)
    model = normalize_iptables([parse_iptables_save(text, source="node.txt")])
    reasons = {(u.chain, u.reason.split(":")[0]) for u in model.unmodelled}
    assert ("PREROUTING", "not written by kube-proxy") in reasons
    assert ("DOCKER", "not written by kube-proxy") in reasons
    assert any(u.chain == svc_chain and "not an endpoint-selection rule" in u.reason for u in model.unmodelled)
    assert len(model.unmodelled) == 3 and model.rules_modelled == model.rules_seen - 3
    for u in model.unmodelled:
        assert u.source == "node.txt" and u.line > 0 and u.rule.startswith("-A ")


def _in_nat(text: str, declarations: str, rules: str) -> str:
    """Add chain declarations and rules to the nat table of an iptables-restore text."""
    head, nat = text.split("*nat\n", 1)
    body, tail = nat.split("COMMIT\n", 1)
    return f"{head}*nat\n{declarations}{body}{rules}COMMIT\n{tail}"


def test_stale_chain_is_reported() -> None:
    text = _in_nat(
        render_iptables(generate_node(3, 1), V4),
        ":KUBE-SVC-AAAAAAAAAAAAAAAA - [0:0]\n",
        "-A KUBE-SVC-AAAAAAAAAAAAAAAA -j KUBE-SEP-BBBBBBBBBBBBBBBB\n",
    )
    model = normalize_iptables([parse_iptables_save(text)])
    assert [(u.chain, u.reason) for u in model.unmodelled] == [
        ("KUBE-SVC-AAAAAAAAAAAAAAAA", "no rule jumps to this kube-proxy chain (stale)")
    ]


def test_broken_ladder_loses_share_honestly() -> None:
    """An endpoint chain without a DNAT is reported, and its share is not given to others."""
    node = generate_node(1, 2, variety=False)
    text = render_iptables(node, V4)
    dnat = next(line for line in text.splitlines() if " -j DNAT " in line)
    model = normalize_iptables([parse_iptables_save(text.replace(dnat + "\n", ""))])
    f = model.services[0].frontends[0]
    assert len(f.endpoints) == 1 and abs(f.endpoints[0].probability - 0.5) < 1e-9
    assert any("no DNAT" in u.reason for u in model.unmodelled)


def test_expected_model_respects_spec_changes() -> None:
    """Guard against a generator that ignores its spec: change one endpoint, models differ."""
    node = generate_node(2, 2, variety=False)
    svc = node.services[0]
    moved = replace(
        node,
        services=(
            replace(svc, endpoints=(replace(svc.endpoints[0], port=9999), *svc.endpoints[1:])),
            *node.services[1:],
        ),
    )
    with pytest.raises(AssertionError):
        assert_same_services(normalized(moved), expected_model(node, ProxyMode.IPTABLES))
