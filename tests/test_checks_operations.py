"""Checks about running and operating the switch: KPA-017 (nf_conntrack), KPA-018 (mode not
pinned), KPA-022 (iptables metrics), KPA-023 (route_localnet) and KPA-027 (rollback plan).
Each passes on a healthy node and fires on the state it is about."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from auditor.check.base import Check
from auditor.check.checks.kpa017_conntrack_not_loaded import ConntrackNotLoaded
from auditor.check.checks.kpa018_proxy_mode_not_pinned import ProxyModeNotPinned
from auditor.check.checks.kpa022_iptables_metrics_disappear import IptablesMetricsDisappear
from auditor.check.checks.kpa023_route_localnet_left_on import RouteLocalnetLeftOn
from auditor.check.checks.kpa027_rollback_plan import RollbackPlan
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from tests.checkctx import HEALTHY_HOST, make_context, with_host
from tests.dumps import generated_iptables

NFT = "iptables-nft-save.txt"
MAX = "net.netfilter.nf_conntrack_max"


def run(check: type, **kwargs: Any) -> Finding:
    return run_check(check(), make_context(**kwargs))


def kube_proxy(**changes: Any) -> dict[str, Any]:
    """HEALTHY_HOST with kube_proxy fields changed; `config={...}` updates the config's keys, `config=None`
    drops the config (with `config_source=None` too: kube-proxy runs on flags alone)."""
    host = with_host()
    if "config" in changes and changes["config"] is not None:
        host["kube_proxy"]["config"] = {**host["kube_proxy"]["config"], **changes.pop("config")}
    host["kube_proxy"].update(changes)
    return host


# -- KPA-017: nf_conntrack ---------------------------------------------------------------------


def no_conntrack(**kube_proxy_changes: Any) -> dict[str, Any]:
    host = kube_proxy(**kube_proxy_changes)
    host["sysctls"][MAX] = None
    host["modules"] = {"loaded": ["nf_tables", "nft_ct", "nft_chain_nat"], "builtin": []}
    return host


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(HEALTHY_HOST, id="loaded"),
        pytest.param(with_host(modules={"loaded": [], "builtin": ["nf_conntrack"]}), id="built-in"),
    ],
)
def test_conntrack_not_loaded_passes(host: dict[str, Any]) -> None:
    finding = run(ConntrackNotLoaded, host=host)
    assert finding.status is Status.PASS, finding.message
    assert finding.evidence[0].source == "host.json: sysctls"


@pytest.mark.parametrize(
    ("host", "status"),
    [
        pytest.param(no_conntrack(), Status.FAIL, id="default-max-per-core"),
        pytest.param(no_conntrack(config={"conntrack": {"maxPerCore": 65536}}), Status.FAIL, id="config-max-per-core"),
        pytest.param(no_conntrack(config={"conntrack": {"maxPerCore": 0}}), Status.WARN, id="config-max-per-core-0"),
        pytest.param(
            no_conntrack(config=None, config_source=None, flags=["--conntrack-max-per-core=0"]),
            Status.WARN,
            id="flag-max-per-core-0",
        ),
    ],
)
def test_conntrack_not_loaded_fires(host: dict[str, Any], status: Status) -> None:
    finding = run(ConntrackNotLoaded, host=host)
    assert finding.status is status, finding.message
    assert {e.source for e in finding.evidence} >= {"host.json: sysctls", "host.json: modules"}


def test_conntrack_not_loaded_evidence_names_the_config_key() -> None:
    finding = run(ConntrackNotLoaded, host=no_conntrack(config={"conntrack": {"maxPerCore": 0}}))
    assert any(
        e.source == "host.json: kube_proxy.config" and e.what == "conntrack.maxPerCore" for e in finding.evidence
    )


def test_conntrack_loaded_but_sysctl_unreadable_warns() -> None:
    host = with_host()
    host["sysctls"][MAX] = None
    assert run(ConntrackNotLoaded, host=host).status is Status.WARN


def test_conntrack_not_loaded_not_applicable_without_data() -> None:
    host = with_host(sysctls={}, modules={"loaded": None, "builtin": None})
    assert run(ConntrackNotLoaded, host=host).status is Status.NOT_APPLICABLE


# -- KPA-018: mode not pinned ------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(HEALTHY_HOST, id="config-mode-iptables"),
        pytest.param(kube_proxy(mode_setting="nftables"), id="recorded-setting"),
        pytest.param(kube_proxy(config=None, config_source=None, flags=["--proxy-mode=nftables"]), id="flag"),
    ],
)
def test_proxy_mode_not_pinned_passes(host: dict[str, Any]) -> None:
    finding = run(ProxyModeNotPinned, host=host)
    assert finding.status is Status.PASS, finding.message


@pytest.mark.parametrize(
    ("host", "source"),
    [
        pytest.param(kube_proxy(config={"mode": ""}), "host.json: kube_proxy.config", id="config-mode-empty"),
        pytest.param(kube_proxy(mode_setting=""), "host.json: kube_proxy.mode_setting", id="recorded-unset"),
        pytest.param(
            kube_proxy(config=None, config_source=None, flags=["--hostname-override=node-1"]),
            "host.json: kube_proxy.flags",
            id="no-config-no-flag",
        ),
    ],
)
def test_proxy_mode_not_pinned_fires(host: dict[str, Any], source: str) -> None:
    finding = run(ProxyModeNotPinned, host=host)
    assert finding.status is Status.INFO, finding.message
    assert "1.40" in finding.message and finding.evidence[0].source == source


def test_proxy_mode_not_pinned_fires_when_config_has_no_mode_key() -> None:
    host = with_host()
    del host["kube_proxy"]["config"]["mode"]
    assert run(ProxyModeNotPinned, host=host).status is Status.INFO


@pytest.mark.parametrize(
    "host",
    [
        pytest.param(with_host(kube_proxy={"running": False}), id="kube-proxy-not-seen"),
        pytest.param(kube_proxy(config=None), id="config-file-unreadable"),
    ],
)
def test_proxy_mode_not_pinned_not_applicable(host: dict[str, Any]) -> None:
    assert run(ProxyModeNotPinned, host=host).status is Status.NOT_APPLICABLE


# -- KPA-022: iptables metrics -----------------------------------------------------------------

NFTABLES_METRICS = {
    "kubeproxy_sync_proxy_rules_duration_seconds_count": 12,
    "kubeproxy_sync_proxy_rules_nftables_sync_failures_total": 0,
}
IPTABLES_METRICS = {
    "kubeproxy_sync_proxy_rules_duration_seconds_count": 12,
    'kubeproxy_sync_proxy_rules_iptables_total{table="nat"}': 180,
    'kubeproxy_sync_proxy_rules_iptables_total{table="filter"}': 22,
    "kubeproxy_sync_proxy_rules_iptables_restore_failures_total": 0,
    "kubeproxy_iptables_ct_state_invalid_dropped_packets_total": 3,
}


def test_iptables_metrics_disappear_passes_when_none_are_exported() -> None:
    finding = run(IptablesMetricsDisappear, host=kube_proxy(metrics=NFTABLES_METRICS))
    assert finding.status is Status.PASS, finding.message


def test_iptables_metrics_disappear_fires_listing_the_exported_ones() -> None:
    finding = run(IptablesMetricsDisappear, host=kube_proxy(metrics=IPTABLES_METRICS))
    assert finding.status is Status.INFO
    assert finding.details["exported_now"] == [
        "kubeproxy_sync_proxy_rules_iptables_total",
        "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
        "kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
    ]
    assert finding.evidence[0].value == "202"  # summed over label sets
    assert "kubeproxy_sync_proxy_rules_nftables_sync_failures_total" in finding.message


def test_iptables_metrics_disappear_fires_when_metrics_are_unreadable() -> None:
    finding = run(IptablesMetricsDisappear, host=kube_proxy(metrics=None, metrics_error="connection refused"))
    assert finding.status is Status.INFO and "connection refused" in finding.message


# -- KPA-023: route_localnet -------------------------------------------------------------------


def localnet(value: str | None) -> dict[str, Any]:
    host = with_host()
    host["sysctls"]["net.ipv4.conf.all.route_localnet"] = value
    return host


def test_route_localnet_left_on_passes() -> None:
    assert run(RouteLocalnetLeftOn, host=localnet("0")).status is Status.PASS


def test_route_localnet_left_on_fires() -> None:
    dump = generated_iptables()
    finding = run(RouteLocalnetLeftOn, host=localnet("1"), iptables={NFT: dump})
    assert finding.status is Status.INFO and "CVE-2020-8558" in finding.message
    assert "NodePorts on 127.0.0.1" in finding.message
    jump = next(e for e in finding.evidence if e.what == "NodePorts answer on 127.0.0.1")
    assert jump.value is not None and dump.splitlines()[int(jump.source.rsplit(":", 1)[1]) - 1] == jump.value


def test_route_localnet_left_on_fires_without_localhost_nodeports() -> None:
    dump = generated_iptables(12, localhost_node_ports=False)
    finding = run(RouteLocalnetLeftOn, host=localnet("1"), iptables={NFT: dump})
    assert finding.status is Status.INFO and "127.0.0.1" not in finding.message


def test_route_localnet_left_on_not_applicable_when_unknown() -> None:
    assert run(RouteLocalnetLeftOn, host=localnet(None)).status is Status.NOT_APPLICABLE


# -- KPA-027: rollback plan --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "status"),
    [
        pytest.param("v1.34.2", Status.INFO, id="1.34"),
        pytest.param("v1.29.0", Status.INFO, id="1.29"),
        pytest.param(None, Status.INFO, id="unknown"),
        pytest.param("v1.28.9", Status.WARN, id="pre-1.29-rollback-target"),
    ],
)
def test_rollback_plan(version: str | None, status: Status) -> None:
    finding = run(RollbackPlan, host=kube_proxy(version=version), target_version="v1.34.2")
    assert finding.status is status, finding.message
    assert finding.details["commands"] == ["nft delete table ip kube-proxy", "nft delete table ip6 kube-proxy"]
    assert "nft delete table ip6 kube-proxy" in finding.remediation and "on its own" in finding.remediation


# -- every check of KPA-013..027 -------------------------------------------------------------

CHECKS = sorted(
    (
        cls
        for name in (
            "kpa013_addon_not_ready_for_nftables",
            "kpa014_both_iptables_backends_hold_kube_rules",
            "kpa015_leftovers_from_other_mode",
            "kpa016_rules_not_modelled",
            "kpa017_conntrack_not_loaded",
            "kpa018_proxy_mode_not_pinned",
            "kpa019_clusterip_hardening",
            "kpa020_etp_local_pod_traffic",
            "kpa021_large_cluster_sync",
            "kpa022_iptables_metrics_disappear",
            "kpa023_route_localnet_left_on",
            "kpa024_old_iptables_save",
            "kpa025_local_traffic_detector",
            "kpa026_nftables_only_host",
            "kpa027_rollback_plan",
        )
        for cls in vars(importlib.import_module(f"auditor.check.checks.{name}")).values()
        if isinstance(cls, type) and issubclass(cls, Check) and cls is not Check and cls.__module__.endswith(name)
    ),
    key=lambda cls: cls.id,
)


def test_checks_013_to_027_are_all_here() -> None:
    assert [cls.id for cls in CHECKS] == [f"KPA-0{n}" for n in range(13, 28)]


@pytest.mark.parametrize("check", [pytest.param(cls, id=cls.id) for cls in CHECKS])
def test_check_documents_itself(check: type[Check]) -> None:
    module = importlib.import_module(check.__module__)
    doc = module.__doc__ or ""
    assert doc.startswith(f"{check.id}: ")
    for section in ("What it checks:", "Why it matters:", "Remediation:", "References:"):
        assert section in doc, section
    assert check.__module__.rsplit(".", 1)[1].startswith(check.id.lower().replace("-", ""))
    assert check.title and check.remediation and check.docs.startswith("https://")


@pytest.mark.parametrize("check", [pytest.param(cls, id=cls.id) for cls in CHECKS])
def test_check_says_what_it_could_not_see_instead_of_raising(check: type[Check]) -> None:
    bare = make_context(host={}, current_mode=None, sources={})
    finding = run_check(check(), bare)
    assert finding.status is not Status.ERROR, finding.message
    assert finding.status in (Status.NOT_APPLICABLE, Status.INFO, Status.WARN, Status.PASS)
