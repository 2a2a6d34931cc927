"""KPA-009: NodePorts served on 127.0.0.1 today, which nftables mode does not do. Snapshots
that pass, fire (fail / warn), inform and do not apply."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa009_localhost_nodeports_in_use import METRIC, LocalhostNodePortsInUse
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import IPFamily, Protocol, ProxyMode
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import EndpointSpec, NodeSpec, ServiceSpec
from tests.checkctx import make_context, with_host
from tests.dumps import generated_iptables
from tests.helpers import reference

NFT = "iptables-nft-save.txt"


def host(route_localnet: str | None = "1", accepted: float | None = None, **config: Any) -> dict[str, Any]:
    h = with_host()
    h["sysctls"]["net.ipv4.conf.all.route_localnet"] = route_localnet
    h["kube_proxy"]["metrics"] = None if accepted is None else {METRIC: accepted}
    h["kube_proxy"]["config"].update(config)
    return h


def run(dump: str | None = None, **kwargs: Any) -> Finding:
    iptables = {NFT: generated_iptables(12) if dump is None else dump}
    return run_check(LocalhostNodePortsInUse(), make_context(iptables=iptables, **kwargs))


@pytest.mark.parametrize(
    ("dump", "snapshot_host", "fragment"),
    [
        pytest.param(
            generated_iptables(12, localhost_node_ports=False),
            host(),
            "exclude 127.0.0.0/8",
            id="rules-exclude-localhost",
        ),
        pytest.param(
            generated_iptables(12, localhost_node_ports=False),
            host(iptables={"localhostNodePorts": False}),
            "iptables.localhostNodePorts is false",
            id="config-turns-it-off",
        ),
        pytest.param(None, host(route_localnet="0"), "route_localnet=0", id="route-localnet-off"),
    ],
)
def test_localhost_nodeports_passes(dump: str | None, snapshot_host: dict[str, Any], fragment: str) -> None:
    finding = run(dump, host=snapshot_host)
    assert finding.status is Status.PASS and fragment in finding.message, finding.message


@pytest.mark.parametrize(
    ("snapshot_host", "status", "fragment"),
    [
        pytest.param(host(accepted=17), Status.FAIL, "17 packets accepted", id="counter-above-zero"),
        pytest.param(host(accepted=0), Status.WARN, "no packet was counted", id="counter-zero"),
        pytest.param(host(), Status.WARN, "could not be measured", id="metrics-unreachable"),
        pytest.param(host(route_localnet=None), Status.WARN, "could not be measured", id="sysctl-unknown"),
        pytest.param(
            host(route_localnet="0", accepted=5), Status.WARN, "keeps them from working", id="counter-but-no-localnet"
        ),
    ],
)
def test_localhost_nodeports_fires(snapshot_host: dict[str, Any], status: Status, fragment: str) -> None:
    finding = run(host=snapshot_host)
    assert finding.status is status and fragment in finding.message, finding.message
    rows = finding.details["nodeports"]
    assert {r["port"] for r in rows} == {30001, 30002, 30003, 30004, 30005, 30009}
    assert all(r["address"] == "127.0.0.1" and r["today"] and not r["after"] for r in rows)
    sources = {e.source for e in finding.evidence}
    assert any(s.startswith(f"{NFT}:") for s in sources) and "host.json: sysctls" in sources


def test_evidence_names_the_counting_rules() -> None:
    finding = run(host=host(accepted=17))
    rules = [e for e in finding.evidence if e.what == "localhost NodePort rule"]
    assert len(rules) == 3 and all("localhost_nps_accepted_pkts" in str(e.value) for e in rules)
    assert any(e.what == "more localhost NodePort rules" and e.value == "3" for e in finding.evidence)


@pytest.mark.parametrize(
    ("target", "mentioned"),
    [pytest.param("1.36.2", False, id="before-1.37"), pytest.param("1.37.0", True, id="1.37-userspace-proxy")],
)
def test_kep_6032_is_mentioned_from_1_37(target: str, mentioned: bool) -> None:
    finding = run(host=host(accepted=3), target_version=target)
    assert finding.status is Status.FAIL
    assert ("KubeProxyNFTablesLocalhostNodePorts" in finding.message) is mentioned
    assert "stay unreachable" not in finding.message  # every generated IPv4 NodePort is TCP


def test_udp_nodeport_is_named_as_beyond_the_userspace_proxy() -> None:
    dns = ServiceSpec(
        "kube-system",
        "dns-np",
        "dns",
        Protocol.UDP,
        IPFamily.IPV4,
        "172.30.0.10",
        53,
        node_port=30053,
        endpoints=(EndpointSpec("10.128.0.5", 53),),
    )
    dump = render_iptables(NodeSpec(services=(dns,)), IPFamily.IPV4)
    finding = run(dump, host=host(accepted=1), target_version="1.37.1")
    assert finding.status is Status.FAIL and "UDP NodePorts stay unreachable" in finding.message
    assert finding.details["nodeports"] == [
        {
            "service": "kube-system/dns-np:dns",
            "port": 30053,
            "protocol": "udp",
            "address": "127.0.0.1",
            "today": True,
            "after": False,
        }
    ]


def test_reference_dump_fires() -> None:
    finding = run(reference("overall.iptables-save.txt").read_text(), host=host(accepted=2))
    assert finding.status is Status.FAIL
    assert {r["port"] for r in finding.details["nodeports"]} == {3001, 3002, 3003}


def test_enabled_without_ipv4_nodeports_is_info() -> None:
    finding = run(generated_iptables(1), host=host(accepted=0))
    assert finding.status is Status.INFO


def test_no_iptables_state_is_not_applicable() -> None:
    finding = run_check(LocalhostNodePortsInUse(), make_context(iptables={}, current_mode=ProxyMode.NFTABLES))
    assert finding.status is Status.NOT_APPLICABLE and "nftables" in finding.message
