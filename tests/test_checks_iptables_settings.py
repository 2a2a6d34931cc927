"""KPA-010: kube-proxy settings under iptables.* (and iptables-only flags) that stop applying in
nftables mode. Config files and flag sets that pass, fire (fail / warn), inform and do not apply."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa010_config_stops_applying import ConfigStopsApplying
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import ProxyMode
from tests.checkctx import make_context, with_host


def configured(**blocks: Any) -> dict[str, Any]:
    h = with_host()
    h["kube_proxy"]["config"].update(blocks)
    return h


def flags_only(*flags: str) -> dict[str, Any]:
    h = with_host()
    h["kube_proxy"].update(config=None, config_source=None, flags=list(flags))
    return h


def run(snapshot_host: dict[str, Any], **kwargs: Any) -> Finding:
    return run_check(ConfigStopsApplying(), make_context(host=snapshot_host, **kwargs))


@pytest.mark.parametrize(
    "snapshot_host",
    [
        pytest.param(with_host(), id="healthy-config"),
        pytest.param(
            configured(iptables={"masqueradeAll": False, "masqueradeBit": 14, "syncPeriod": "30s"}),
            id="defaults-spelled-out",
        ),
        pytest.param(
            configured(
                iptables={"masqueradeAll": True, "masqueradeBit": 15, "syncPeriod": "1m", "minSyncPeriod": "10s"},
                nftables={"masqueradeAll": True, "masqueradeBit": 15, "syncPeriod": "60s", "minSyncPeriod": "10s"},
            ),
            id="copied-to-nftables",
        ),
        pytest.param(flags_only("--hostname-override=node-1", "--iptables-masquerade-bit=14"), id="flags-default-bit"),
        pytest.param(
            configured(iptables=None, nftables=None),
            id="null-blocks",
        ),
    ],
)
def test_iptables_settings_passes(snapshot_host: dict[str, Any]) -> None:
    finding = run(snapshot_host)
    assert finding.status is Status.PASS, finding.message


@pytest.mark.parametrize(
    ("snapshot_host", "status", "keys"),
    [
        pytest.param(
            configured(iptables={"masqueradeAll": True}),
            Status.FAIL,
            ["iptables.masqueradeAll"],
            id="masquerade-all-lost",
        ),
        pytest.param(
            configured(iptables={"masqueradeAll": True}, nftables={"masqueradeAll": False}),
            Status.FAIL,
            ["iptables.masqueradeAll"],
            id="masquerade-all-contradicted",
        ),
        pytest.param(
            configured(iptables={"masqueradeBit": 15}), Status.WARN, ["iptables.masqueradeBit"], id="mark-bit"
        ),
        pytest.param(
            configured(iptables={"syncPeriod": "1m", "minSyncPeriod": "10s"}, nftables={"syncPeriod": "1m"}),
            Status.WARN,
            ["iptables.minSyncPeriod"],
            id="sync-period",
        ),
        pytest.param(configured(iptables={"localhostNodePorts": True}), Status.PASS, [], id="localhost-default-true"),
        pytest.param(
            flags_only("--iptables-masquerade-bit=16"), Status.WARN, ["--iptables-masquerade-bit"], id="flag-mark-bit"
        ),
        pytest.param(
            flags_only("--iptables-localhost-nodeports=true"),
            Status.WARN,
            ["--iptables-localhost-nodeports"],
            id="flag-localhost",
        ),
        pytest.param(
            flags_only("--masquerade-all"), Status.INFO, ["--masquerade-all"], id="flag-masquerade-all-carries-over"
        ),
        pytest.param(
            configured(iptables={"localhostNodePorts": False}),
            Status.INFO,
            ["iptables.localhostNodePorts"],
            id="localhost-false",
        ),
    ],
)
def test_iptables_settings_fires(snapshot_host: dict[str, Any], status: Status, keys: list[str]) -> None:
    finding = run(snapshot_host)
    assert finding.status is status, finding.message
    assert [row["key"] for row in finding.details["settings"]] == keys
    for key in keys:
        evidence = next(e for e in finding.evidence if e.what.startswith(key))
        assert evidence.source in ("host.json: kube_proxy.config", "host.json: kube_proxy.flags")


def test_remediation_names_the_nftables_keys() -> None:
    finding = run(configured(iptables={"masqueradeAll": True, "masqueradeBit": 15, "localhostNodePorts": False}))
    assert finding.remediation == (
        "Before switching to mode: nftables, set nftables.masqueradeAll: true; set nftables.masqueradeBit: 15."
    )
    flags = run(flags_only("--iptables-masquerade-bit=16"))
    assert "there are no nftables.* flags" in (flags.remediation or "")


def test_flags_next_to_a_config_file_are_noted_as_ignored() -> None:
    h = configured()
    h["kube_proxy"]["flags"] = ["--config=/var/lib/kube-proxy/config.conf", "--masquerade-all"]
    finding = run(h)
    assert finding.status is Status.PASS
    assert any(e.what.startswith("--masquerade-all (ignored") for e in finding.evidence)


@pytest.mark.parametrize(
    ("snapshot_host", "kwargs", "status", "fragment"),
    [
        pytest.param(
            {**with_host(), "kube_proxy": {"running": False}},
            {},
            Status.NOT_APPLICABLE,
            "not running",
            id="no-kube-proxy",
        ),
        pytest.param(
            with_host(), {"current_mode": ProxyMode.NFTABLES}, Status.NOT_APPLICABLE, "already", id="already-nftables"
        ),
        pytest.param(
            {
                **with_host(),
                "kube_proxy": {**with_host()["kube_proxy"], "config": None, "config_error": "permission denied"},
            },
            {},
            Status.WARN,
            "permission denied",
            id="config-file-unreadable",
        ),
    ],
)
def test_missing_data_is_said(
    snapshot_host: dict[str, Any], kwargs: dict[str, Any], status: Status, fragment: str
) -> None:
    finding = run(snapshot_host, **kwargs)
    assert finding.status is status and fragment in finding.message, finding.message
