"""Checks that read the Service model: KPA-016 (rules not modelled), KPA-019 (ClusterIP hardening),
KPA-020 (eTP Local pod traffic), KPA-021 (large clusters) and KPA-025 (local-traffic detector).
Each passes on a node without the state it is about and fires on one that has it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from auditor.check.checks.kpa016_rules_not_modelled import RulesNotModelled
from auditor.check.checks.kpa019_clusterip_hardening import ClusterIPHardening
from auditor.check.checks.kpa020_etp_local_pod_traffic import EtpLocalPodTrafficDropped
from auditor.check.checks.kpa021_large_cluster_sync import LargeClusterSlowSync
from auditor.check.checks.kpa025_local_traffic_detector import LocalTrafficDetectorMissing
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import (
    Endpoint,
    Frontend,
    FrontendKind,
    IPFamily,
    Protocol,
    ProxyMode,
    Result,
    ServiceModel,
    ServicePort,
)
from tests.checkctx import make_context, with_host
from tests.dumps import generated_iptables, with_chain, without_lines
from tests.helpers import reference

NFT = "iptables-nft-save.txt"


def run(check: type, **kwargs: Any) -> Finding:
    return run_check(check(), make_context(**kwargs))


def kube_proxy_nft() -> str:
    return reference("overall.nft.json").read_text()


# -- KPA-016: rules not modelled ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "mode"),
    [
        pytest.param("generated", "iptables", id="generated-iptables"),
        pytest.param("overall.iptables-save.txt", "iptables", id="reference-iptables"),
        pytest.param("overall.nft.json", "nftables", id="reference-nftables"),
    ],
)
def test_rules_not_modelled_passes(source: str, mode: str) -> None:
    if source == "generated":
        kwargs: dict[str, Any] = {"iptables": {NFT: generated_iptables()}}
    elif source.endswith(".json"):
        kwargs = {"nft_json": reference(source).read_text()}
    else:
        kwargs = {"iptables": {NFT: reference(source).read_text()}}
    finding = run(RulesNotModelled, **kwargs)
    assert finding.status is Status.PASS, finding.message
    coverage = finding.details["coverage"][mode]
    assert coverage["ratio"] == 1.0 and coverage["rules_seen"] == coverage["rules_modelled"] > 0


def test_rules_not_modelled_foreign_rules_alone_are_info() -> None:
    dump = with_chain(generated_iptables(), "filter", "INPUT", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
    finding = run(RulesNotModelled, iptables={NFT: dump})
    assert finding.status is Status.INFO, finding.message
    assert len(finding.details["foreign"]) == 1 and finding.details["uninterpreted"] == []
    line = dump.splitlines().index("-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT") + 1
    assert finding.evidence[0].source == f"{NFT}:{line}"
    coverage = finding.details["coverage"]["iptables"]
    assert coverage["ratio"] < 1.0 and coverage["kube_proxy_ratio"] == 1.0 and coverage["foreign_rules"] == 1


STALE = "-A KUBE-SVC-STALESTALESTALE1 -j KUBE-SEP-STALESTALESTALE1"
ODD_MASQ = "-A KUBE-MARK-MASQ -m foo --bar 1 -j MARK --set-xmark 0x4000/0x4000"


@pytest.mark.parametrize(
    ("chain", "rule", "reason"),
    [
        pytest.param("KUBE-SVC-STALESTALESTALE1", STALE, "stale", id="stale-service-chain"),
        pytest.param("KUBE-MARK-MASQ", ODD_MASQ, "not a rule kube-proxy writes in this chain", id="unknown-match"),
    ],
)
def test_rules_not_modelled_fires_on_kube_proxy_rules(chain: str, rule: str, reason: str) -> None:
    dump = with_chain(generated_iptables(), "nat", chain, rule)
    dump = with_chain(dump, "filter", "INPUT", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
    finding = run(RulesNotModelled, iptables={NFT: dump})
    assert finding.status is Status.WARN, finding.message
    assert len(finding.details["uninterpreted"]) == 1 and len(finding.details["foreign"]) == 1
    row = finding.details["uninterpreted"][0]
    assert reason in row["reason"] and row["where"] == f"{NFT}:{dump.splitlines().index(rule) + 1}"
    assert "rules of other components: 1" in finding.message
    assert finding.evidence[0].value == rule


def test_rules_not_modelled_lists_twenty_and_keeps_all_in_details() -> None:
    rules = [f"-A KUBE-SVC-STALESTALESTALE1 -j KUBE-SEP-STALE{n:011d}" for n in range(25)]
    dump = with_chain(generated_iptables(), "nat", "KUBE-SVC-STALESTALESTALE1", *rules)
    finding = run(RulesNotModelled, iptables={NFT: dump})
    assert finding.status is Status.WARN
    assert len(finding.evidence) == 20 and len(finding.details["uninterpreted"]) == 25
    assert "could not be interpreted: 25" in finding.message and "first 20" in finding.message


def test_rules_not_modelled_not_applicable_without_kube_proxy_state() -> None:
    finding = run(RulesNotModelled)
    assert finding.status is Status.NOT_APPLICABLE and finding.details["coverage"] == {}


# -- KPA-019: ClusterIP hardening --------------------------------------------------------------


def test_clusterip_hardening_passes_without_cluster_ips() -> None:
    finding = run(ClusterIPHardening, iptables={NFT: generated_iptables(0)})
    assert finding.status is Status.PASS, finding.message


@pytest.mark.parametrize(
    ("dump", "address", "ports"),
    [
        pytest.param("generated", "172.30.0.17", ["udp/53"], id="generated"),
        pytest.param("overall.iptables-save.txt", "172.30.0.41", ["tcp/80"], id="reference"),
    ],
)
def test_clusterip_hardening_fires(dump: str, address: str, ports: list[str]) -> None:
    text = generated_iptables() if dump == "generated" else reference(dump).read_text()
    finding = run(ClusterIPHardening, iptables={NFT: text})
    assert finding.status is Status.INFO, finding.message
    listed = {item["address"]: item for item in finding.details["cluster_ips"]}
    assert listed[address]["ports"] == ports
    assert finding.evidence and finding.evidence[0].source.startswith(f"{NFT}:")


def test_clusterip_hardening_not_applicable_in_nftables_mode() -> None:
    finding = run(ClusterIPHardening, nft_json=kube_proxy_nft(), current_mode=ProxyMode.NFTABLES)
    assert finding.status is Status.NOT_APPLICABLE


# -- KPA-020: externalTrafficPolicy Local, pods calling external IPs --------------------------


def versioned(version: str | None) -> dict[str, Any]:
    host = with_host()
    host["kube_proxy"]["version"] = version
    return host


def test_etp_local_pod_traffic_passes_without_such_services() -> None:
    finding = run(EtpLocalPodTrafficDropped, host=versioned("v1.31.0"), iptables={NFT: generated_iptables(5)})
    assert finding.status is Status.PASS, finding.message


@pytest.mark.parametrize(
    ("version", "target", "status"),
    [
        pytest.param("v1.32.4", None, Status.WARN, id="1.32-no-fix"),
        pytest.param("v1.33.5", None, Status.WARN, id="1.33.5-before-cherry-pick"),
        pytest.param("v1.33.6", None, Status.INFO, id="1.33.6-cherry-pick"),
        pytest.param("v1.34.0", None, Status.INFO, id="1.34-fixed"),
        pytest.param("v1.32.4", "v1.34.1", Status.INFO, id="target-version-fixed"),
        pytest.param(None, None, Status.WARN, id="version-unknown"),
    ],
)
def test_etp_local_pod_traffic_fires(version: str | None, target: str | None, status: Status) -> None:
    finding = run(
        EtpLocalPodTrafficDropped, host=versioned(version), iptables={NFT: generated_iptables()}, target_version=target
    )
    assert finding.status is status, finding.message
    frontends = {(f["service"], f["kind"]): f for f in finding.details["frontends"]}
    assert frontends[("ns5/svc5:http", "load-balancer")]["local_endpoints_here"] is True
    assert frontends[("ns2/svc9:http", "external-ip")]["local_endpoints_here"] is False
    assert any(e.source.startswith(f"{NFT}:") for e in finding.evidence)


def test_etp_local_pod_traffic_fires_from_the_nftables_model() -> None:
    finding = run(
        EtpLocalPodTrafficDropped, host=versioned("v1.31.2"), nft_json=kube_proxy_nft(), current_mode=ProxyMode.NFTABLES
    )
    assert finding.status is Status.WARN and finding.details["frontends"]


# -- KPA-021: large clusters -------------------------------------------------------------------


def big_model(service_ports: int, endpoints_each: int) -> ServiceModel:
    """A ClusterIP-only model, built directly: rendering 5,000 Services would slow the suite down."""
    services = []
    for i in range(service_ports):
        address = f"172.{16 + i // 65536}.{i // 256 % 256}.{i % 256}"
        endpoints = tuple(
            Endpoint(f"10.{i // 256 % 256}.{i % 256}.{j}", 8080, 1 / endpoints_each) for j in range(endpoints_each)
        )
        frontend = Frontend(FrontendKind.CLUSTER_IP, address, 80, Result.DNAT, endpoints)
        services.append(ServicePort(f"ns/svc{i}:http", Protocol.TCP, IPFamily.IPV4, (frontend,)))
    return ServiceModel(ProxyMode.IPTABLES, tuple(services), families=(IPFamily.IPV4,))


def large(model: ServiceModel, version: str | None, target: str | None = None) -> Finding:
    ctx = make_context(host=versioned(version), target_version=target)
    return run_check(LargeClusterSlowSync(), dataclasses.replace(ctx, models={ProxyMode.IPTABLES: model}))


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {NFT: generated_iptables()}}, id="generated"),
        pytest.param({"nft_json": "reference"}, id="reference-nftables"),
    ],
)
def test_large_cluster_passes(kwargs: dict[str, Any]) -> None:
    if kwargs.get("nft_json") == "reference":
        kwargs = {"nft_json": kube_proxy_nft(), "current_mode": ProxyMode.NFTABLES}
    finding = run(LargeClusterSlowSync, **kwargs)
    assert finding.status is Status.PASS, finding.message
    assert finding.details["service_ports"] > 0 and finding.details["endpoints"] > 0


def test_large_cluster_counts_generated_endpoints() -> None:
    finding = run(LargeClusterSlowSync, iptables={NFT: generated_iptables(12, endpoints_per_service=3)})
    # what this node programs: 3 endpoints for 9 ports, none for svc8 (no endpoints) and svc10 (iTP Local, no
    # local endpoint), only the local one for svc6 (iTP Local)
    assert finding.details == {"service_ports": 12, "services": 12, "endpoints": 28, "source": "iptables"}


@pytest.mark.parametrize(
    ("ports", "endpoints", "version", "target", "status"),
    [
        pytest.param(5_000, 1, "v1.34.2", None, Status.WARN, id="5k-services-1.34"),
        pytest.param(1_000, 100, "v1.35.1", None, Status.WARN, id="100k-endpoints-1.35"),
        pytest.param(5_000, 1, None, None, Status.WARN, id="version-unknown"),
        pytest.param(5_000, 1, "v1.37.0", None, Status.INFO, id="1.37-netlink"),
        pytest.param(5_000, 1, "v1.34.2", "v1.37.1", Status.INFO, id="target-version-1.37"),
        pytest.param(4_999, 20, "v1.30.0", None, Status.PASS, id="just-below"),
    ],
)
def test_large_cluster_fires(
    ports: int, endpoints: int, version: str | None, target: str | None, status: Status
) -> None:
    finding = large(big_model(ports, endpoints), version, target)
    assert finding.status is status, finding.message
    assert finding.details["endpoints"] == ports * endpoints


def test_large_cluster_not_applicable_without_kube_proxy_state() -> None:
    assert run(LargeClusterSlowSync).status is Status.NOT_APPLICABLE


# -- KPA-025: local-traffic detector -----------------------------------------------------------


def test_local_traffic_detector_shows_detector_and_config() -> None:
    finding = run(LocalTrafficDetectorMissing, iptables={NFT: generated_iptables()})
    assert finding.status is Status.INFO, finding.message
    assert finding.details == {"detector": ["10.0.0.0/8"], "config": {"clusterCIDR": "10.0.0.0/8"}}
    assert any(e.source == "host.json: kube_proxy.config" for e in finding.evidence)


def test_local_traffic_detector_passes_on_the_nftables_reference() -> None:
    finding = run(LocalTrafficDetectorMissing, nft_json=kube_proxy_nft(), current_mode=ProxyMode.NFTABLES)
    assert finding.status is Status.INFO and finding.details["detector"] == ["10.0.0.0/8"]


def no_detector_host() -> dict[str, Any]:
    host = with_host()
    del host["kube_proxy"]["config"]["clusterCIDR"]
    return host


def test_local_traffic_detector_fires_without_a_detector() -> None:
    # kube-proxy without a detector writes neither the `! -s <podCIDR>` masquerade rules nor the
    # eTP Local `-s <podCIDR>` short-circuit rules
    dump = without_lines(generated_iptables(), "10.0.0.0/8")
    finding = run(LocalTrafficDetectorMissing, host=no_detector_host(), iptables={NFT: dump})
    assert finding.status is Status.WARN, finding.message
    assert "none of detectLocalMode/clusterCIDR set" in finding.message and finding.details["detector"] == []


def test_local_traffic_detector_fires_with_flags_when_there_is_no_config_file() -> None:
    host = no_detector_host()
    host["kube_proxy"].update(config=None, config_source=None, flags=["--detect-local-mode=ClusterCIDR"])
    dump = without_lines(generated_iptables(), "10.0.0.0/8")
    finding = run(LocalTrafficDetectorMissing, host=host, iptables={NFT: dump})
    assert finding.status is Status.WARN and "--detect-local-mode=ClusterCIDR" in finding.message


@pytest.mark.parametrize(
    ("dump", "words"),
    [
        pytest.param(generated_iptables(5, masquerade_all=True), "masqueradeAll", id="masquerade-all"),
        pytest.param(generated_iptables(4, endpoints_per_service=0), "no Service has endpoints", id="no-endpoints"),
    ],
)
def test_local_traffic_detector_passes_when_the_rules_cannot_show_one(dump: str, words: str) -> None:
    finding = run(LocalTrafficDetectorMissing, host=no_detector_host(), iptables={NFT: dump})
    assert finding.status is Status.INFO and words in finding.message, finding.message


def test_local_traffic_detector_not_applicable_without_kube_proxy_state() -> None:
    assert run(LocalTrafficDetectorMissing).status is Status.NOT_APPLICABLE
