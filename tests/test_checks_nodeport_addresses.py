"""KPA-008: NodePorts stop answering on addresses outside nodePortAddresses (default primary).
Snapshots that pass, fire (fail / warn) and do not apply, from the generator and the reference dump."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa008_nodeports_stop_answering import NodePortsStopAnswering
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import IPFamily, ProxyMode
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from tests.checkctx import HEALTHY_HOST, make_context, with_host
from tests.dumps import generated_iptables
from tests.helpers import reference

NFT = "iptables-nft-save.txt"
ETH1 = {"interface": "eth1", "address": "10.1.0.7", "prefix": 24}
TWO_NICS = [*HEALTHY_HOST["addresses"], ETH1]
NO_LOCALHOST = generated_iptables(12, localhost_node_ports=False, nfacct=False)


def host(addresses: list[dict[str, Any]] | None = None, **config: Any) -> dict[str, Any]:
    h = with_host(addresses=TWO_NICS if addresses is None else addresses)
    h["kube_proxy"]["config"].update(config)
    return h


def run(dump: str | None = None, **kwargs: Any) -> Finding:
    iptables = {NFT: generated_iptables(12) if dump is None else dump}
    return run_check(NodePortsStopAnswering(), make_context(iptables=iptables, **kwargs))


@pytest.mark.parametrize(
    ("dump", "snapshot_host"),
    [
        pytest.param(NO_LOCALHOST, with_host(), id="one-address-no-localhost"),
        pytest.param(NO_LOCALHOST, host(nodePortAddresses=["0.0.0.0/0", "::/0"]), id="explicit-all"),
        pytest.param(NO_LOCALHOST, host(nodePortAddresses=["all"]), id="keyword-all"),
        pytest.param(NO_LOCALHOST, host(nodePortAddresses=["192.168.0.0/24", "10.1.0.0/24"]), id="cidrs-cover-both"),
        pytest.param(
            generated_iptables(12, node_port_addresses=("192.168.0.2",), localhost_node_ports=False),
            host(),
            id="iptables-already-primary-only",
        ),
    ],
)
def test_nodeport_addresses_passes(dump: str, snapshot_host: dict[str, Any]) -> None:
    finding = run(dump, host=snapshot_host)
    assert finding.status is Status.PASS, finding.message
    assert finding.details["nodeports"] == []


@pytest.mark.parametrize(
    ("snapshot_host", "lost"),
    [
        pytest.param(host(), {"10.1.0.7", "127.0.0.1"}, id="secondary-nic-and-localhost"),
        pytest.param(host(nodePortAddresses=["primary"]), {"10.1.0.7", "127.0.0.1"}, id="explicit-primary"),
        pytest.param(
            host(nodePortAddresses=["192.168.0.0/24", "127.0.0.0/8"]), {"10.1.0.7", "127.0.0.1"}, id="cidr-misses-nic"
        ),
        pytest.param(host(bindAddress="10.1.0.7"), {"192.168.0.2", "127.0.0.1"}, id="bind-address-is-primary"),
    ],
)
def test_secondary_address_fires(snapshot_host: dict[str, Any], lost: set[str]) -> None:
    finding = run(host=snapshot_host)
    assert finding.status is Status.FAIL, finding.message
    rows = finding.details["nodeports"]
    assert {r["address"] for r in rows} == lost
    assert all(r["today"] is True and r["after"] is False for r in rows)
    assert not any(r["kind"] == "health-check" and r["address"] == "127.0.0.1" for r in rows)
    assert '"0.0.0.0/0", "::/0"' in (finding.remediation or "")


def test_rows_name_every_nodeport_and_health_check_port() -> None:
    finding = run(host=host())
    lost_nic = {(r["port"], r["kind"]) for r in finding.details["nodeports"] if r["address"] == "10.1.0.7"}
    assert lost_nic == {
        (30001, "node-port"),
        (30002, "node-port"),
        (30003, "node-port"),
        (30004, "node-port"),
        (30005, "node-port"),
        (30009, "node-port"),
        (50005, "health-check"),
        (50009, "health-check"),
    }
    assert finding.message.startswith("NodePorts stop answering on 10.1.0.7 (eth1), 127.0.0.1 (lo)")
    assert "and " in finding.message and "more" in finding.message  # first few, then a count
    assert any(e.what == "where NodePorts answer today" and e.source.startswith(f"{NFT}:") for e in finding.evidence)
    assert any("assumed primary ipv4 address" in e.what and e.value == "192.168.0.2 (eth0)" for e in finding.evidence)
    assert '"10.1.0.7/32", "192.168.0.2/32"' in (finding.remediation or "")


@pytest.mark.parametrize(
    ("dump", "snapshot_host", "fragment"),
    [
        pytest.param(None, with_host(), "only localhost is lost", id="localhost-only"),
        pytest.param(
            NO_LOCALHOST,
            host([HEALTHY_HOST["addresses"][1]], bindAddress="10.9.9.9"),
            "only address",
            id="only-address",
        ),
        pytest.param(None, with_host(addresses=None), "no local address list", id="addresses-unknown"),
    ],
)
def test_localhost_or_doubtful_fires_as_warning(dump: str | None, snapshot_host: dict[str, Any], fragment: str) -> None:
    finding = run(dump, host=snapshot_host)
    assert finding.status is Status.WARN and fragment in finding.message


def test_ipv6_extra_address_fires() -> None:
    node = generate_node(12, 2, families=(IPFamily.IPV4, IPFamily.IPV6), localhost_node_ports=False, nfacct=False)
    dumps = {NFT: render_iptables(node, IPFamily.IPV4), "ip6tables-nft-save.txt": render_iptables(node, IPFamily.IPV6)}
    addresses = [
        *HEALTHY_HOST["addresses"],
        {"interface": "lo", "address": "::1", "prefix": 128},
        {"interface": "eth0", "address": "2001:db8::1", "prefix": 64},
        {"interface": "eth0", "address": "fe80::1", "prefix": 64},
        {"interface": "eth0", "address": "2001:db8::abcd", "prefix": 64},
    ]
    finding = run_check(NodePortsStopAnswering(), make_context(host=with_host(addresses=addresses), iptables=dumps))
    assert finding.status is Status.FAIL
    assert {r["address"] for r in finding.details["nodeports"]} == {"2001:db8::abcd"}
    assert {r["protocol"] for r in finding.details["nodeports"]} >= {"tcp"}


def test_reference_dump_fires() -> None:
    dump = reference("overall.iptables-save.txt").read_text()
    finding = run(dump, host=host())
    assert finding.status is Status.FAIL
    rows = {(r["service"], r["port"], r["address"]) for r in finding.details["nodeports"]}
    assert ("ns2/svc2:p80", 3001, "10.1.0.7") in rows and ("ns2/svc2:p80", 30000, "10.1.0.7") in rows
    assert ("ns3/svc3:p80", 3003, "127.0.0.1") in rows


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {}, "current_mode": ProxyMode.NFTABLES}, id="no-iptables-state"),
        pytest.param({"iptables": {NFT: generated_iptables(1)}}, id="no-nodeports"),
    ],
)
def test_not_applicable(kwargs: dict[str, Any]) -> None:
    finding = run_check(NodePortsStopAnswering(), make_context(**kwargs))
    assert finding.status is Status.NOT_APPLICABLE, finding.message


def test_missing_iptables_dump_in_iptables_mode_is_a_warning() -> None:
    finding = run_check(NodePortsStopAnswering(), make_context(iptables={}))
    assert finding.status is Status.WARN and "no iptables dump" in finding.message
    stale = run_check(NodePortsStopAnswering(), make_context(iptables={NFT: "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"}))
    assert stale.status is Status.WARN and "KUBE-SERVICES" in stale.message
