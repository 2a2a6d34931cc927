"""Checks KPA-001..007 (kernel, nft, kube-proxy version, kernel features): each passes on a
healthy node and fires on the state it is about."""

from __future__ import annotations

import importlib

import pytest

from auditor.check.checks.kpa001_kernel_too_old import KernelTooOld
from auditor.check.checks.kpa002_conntrack_workaround_lost import ConntrackWorkaroundLost
from auditor.check.checks.kpa003_kernel_check_bypassed import KernelCheckBypassed
from auditor.check.checks.kpa004_host_nft_missing_or_old import HostNftMissingOrOld
from auditor.check.checks.kpa005_host_nft_newer_than_kube_proxy import HostNftNewerThanKubeProxy
from auditor.check.checks.kpa006_kube_proxy_too_old import KubeProxyTooOld
from auditor.check.checks.kpa007_kernel_features_missing import KernelFeaturesMissing
from auditor.check.registry import REGISTRY
from auditor.check.runner import run_check
from auditor.collect.probe import FeatureResult, ProbeResult
from auditor.findings import Severity, Status
from tests.checkctx import HEALTHY_HOST, healthy_probe, make_context, with_host


def status(check, **kwargs) -> Status:
    return run_check(check(), make_context(**kwargs)).status


def test_registry_ids_match_and_every_check_has_docs() -> None:
    for cid, cls in REGISTRY.items():
        assert cls.id == cid and cid.startswith("KPA-") and len(cid) == 7
        doc = importlib.import_module(cls.__module__).__doc__ or ""
        for section in ("What it checks", "Why it matters", "Remediation", "References"):
            assert f"{section}:" in doc, (cid, section)
        assert cls.docs.startswith("http")
        assert cls.title and cls.remediation and isinstance(cls.severity, Severity)


def test_healthy_node_passes_every_host_check() -> None:
    ctx = make_context()
    for check in (
        KernelTooOld,
        ConntrackWorkaroundLost,
        KernelCheckBypassed,
        HostNftMissingOrOld,
        HostNftNewerThanKubeProxy,
        KubeProxyTooOld,
        KernelFeaturesMissing,
    ):
        finding = run_check(check(), ctx)
        assert finding.status is Status.PASS, (check.id, finding.message)


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("5.10.0-28-amd64", Status.FAIL),
        ("4.18.0-513.el8.x86_64", Status.FAIL),
        ("5.13.0", Status.PASS),
        ("5.15.0-91-generic", Status.PASS),
    ],
)
def test_kernel_floor(release: str, expected: Status) -> None:
    assert status(KernelTooOld, host=with_host(kernel_release=release)) is expected


def test_kernel_unreadable_is_an_error_not_a_pass() -> None:
    assert status(KernelTooOld, host=with_host(kernel_release=None)) is Status.ERROR


def test_conntrack_workaround() -> None:
    old = with_host(kernel_release="5.15.0-91-generic")
    finding = run_check(ConntrackWorkaroundLost(), make_context(host=old))
    assert finding.status is Status.WARN and "be_liberal" in finding.message
    old["sysctls"]["net.netfilter.nf_conntrack_tcp_be_liberal"] = "1"
    assert status(ConntrackWorkaroundLost, host=old) is Status.PASS
    configured = with_host(kernel_release="5.15.0")
    configured["kube_proxy"]["config"]["conntrack"] = {"tcpBeLiberal": True}
    assert status(ConntrackWorkaroundLost, host=configured) is Status.PASS


def test_conntrack_workaround_evidence_shows_rule_and_counter() -> None:
    host = with_host(kernel_release="5.15.0")
    host["kube_proxy"]["metrics"] = {"kubeproxy_iptables_ct_state_invalid_dropped_packets_total": "42"}
    text = "*filter\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n"
    finding = run_check(ConntrackWorkaroundLost(), make_context(host=host, iptables={"iptables-nft-save.txt": text}))
    assert "42" in finding.message
    assert any(e.source == "iptables-nft-save.txt:3" for e in finding.evidence)


def test_kernel_check_bypass() -> None:
    host = with_host()
    host["kube_proxy"]["environment"] = {"KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK": "1"}
    assert status(KernelCheckBypassed, host=host) is Status.WARN
    host.update(kernel_release="5.10.0", nft_version="nftables v0.9.8 (E.D.S.)")
    assert status(KernelCheckBypassed, host=host) is Status.FAIL
    stopped = with_host()
    stopped["kube_proxy"] = {"running": False}
    assert status(KernelCheckBypassed, host=stopped) is Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("nft", "expected"),
    [
        (None, Status.WARN),
        ("nftables v0.9.8 (E.D.S.)", Status.FAIL),
        ("nftables v1.0.0 (Fearless Fosdick)", Status.WARN),
        ("nftables v1.0.1 (Fearless Fosdick #3)", Status.PASS),
    ],
)
def test_host_nft(nft, expected: Status) -> None:
    assert status(HostNftMissingOrOld, host=with_host(nft_version=nft)) is expected


@pytest.mark.parametrize(
    ("kube_proxy", "target", "expected"),
    [
        ("v1.32.4", None, Status.FAIL),
        ("v1.34.2", None, Status.WARN),
        ("v1.36.1", None, Status.WARN),
        ("v1.32.4", "1.36.0", Status.WARN),
        (None, None, Status.WARN),
    ],
)
def test_newer_host_nft(kube_proxy, target, expected: Status) -> None:
    host = with_host(nft_version="nftables v1.1.3 (Commodore Bullmoose #4)")
    host["kube_proxy"]["version"] = kube_proxy
    assert status(HostNftNewerThanKubeProxy, host=host, target_version=target) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [("v1.28.9", Status.FAIL), ("v1.30.1", Status.WARN), ("v1.31.0", Status.INFO), ("v1.33.0", Status.PASS)],
)
def test_kube_proxy_version(version: str, expected: Status) -> None:
    host = with_host()
    host["kube_proxy"]["version"] = version
    assert status(KubeProxyTooOld, host=host) is expected


def test_target_version_answers_for_the_planned_upgrade() -> None:
    host = with_host()
    host["kube_proxy"]["version"] = "v1.28.0"
    assert status(KubeProxyTooOld, host=host, target_version="v1.33.1") is Status.PASS


def test_missing_feature_is_named() -> None:
    probe = healthy_probe()
    features = tuple(
        FeatureResult(
            f.name, f.name != "numgen", f.provides, None if f.name != "numgen" else "Error: numgen not supported"
        )
        for f in probe.features
    )
    finding = run_check(KernelFeaturesMissing(), make_context(probe=ProbeResult(True, None, "/usr/sbin/nft", features)))
    assert finding.status is Status.FAIL and "numgen" in finding.message and finding.details["missing"] == ["numgen"]


def test_probe_that_did_not_run_is_not_a_pass() -> None:
    finding = run_check(KernelFeaturesMissing(), make_context(probe=ProbeResult(False, "needs root", None)))
    assert finding.status is Status.WARN and "needs root" in finding.message
    bare = dict(HEALTHY_HOST, modules={"loaded": [], "builtin": []})
    assert (
        run_check(KernelFeaturesMissing(), make_context(host=bare, probe=ProbeResult(False, "needs root", None))).status
        is Status.ERROR
    )
