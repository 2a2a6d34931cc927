"""Checks about other users of netfilter on the node: KPA-013 (CNIs and add-ons), KPA-014 (both
iptables backends), KPA-015 (the other mode's leftovers), KPA-024 (old iptables-save) and
KPA-026 (no legacy iptables). Each passes on a clean node and fires on the state it is about."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa013_addon_not_ready_for_nftables import AddonNotReadyForNftables
from auditor.check.checks.kpa014_both_iptables_backends_hold_kube_rules import BothIptablesBackendsHoldKubeRules
from auditor.check.checks.kpa015_leftovers_from_other_mode import LeftoversFromOtherMode
from auditor.check.checks.kpa024_old_iptables_save import OldIptablesSave
from auditor.check.checks.kpa026_nftables_only_host import NftablesOnlyHost
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import ProxyMode
from tests.checkctx import make_context, with_host
from tests.dumps import generated_iptables, nft_ruleset, with_chain
from tests.helpers import reference

NFT = "iptables-nft-save.txt"
LEGACY = "iptables-legacy-save.txt"

#: what kubelet leaves in a backend: the hint chain and its localnet firewall rule
KUBELET_ONLY = (
    "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"
    "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n-A INPUT -j KUBE-FIREWALL\n"
    '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8'
    " -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\nCOMMIT\n"
)
EMPTY_LEGACY = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
#: kube-router's chains share the KUBE- prefix but are not kube-proxy's or kubelet's
KUBE_ROUTER_LEGACY = (
    "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-ROUTER-INPUT - [0:0]\n:KUBE-NWPLCY-DEFAULT - [0:0]\n"
    "-A INPUT -j KUBE-ROUTER-INPUT\n-A KUBE-ROUTER-INPUT -j KUBE-NWPLCY-DEFAULT\n"
    "-A KUBE-NWPLCY-DEFAULT -j MARK --set-xmark 0x10000/0x10000\nCOMMIT\n"
)


def run(check: type, **kwargs: Any) -> Finding:
    return run_check(check(), make_context(**kwargs))


def kube_proxy_nft() -> str:
    return reference("overall.nft.json").read_text()


def sources(legacy: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {"iptables-nft-save": {"ok": True}, "nft": {"ok": True}}
    if legacy is not None:
        found["iptables-legacy-save"] = legacy
    return found


# -- KPA-013: CNIs and add-ons ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {NFT: generated_iptables()}}, id="generated-kube-proxy-only"),
        pytest.param({"iptables": {NFT: generated_iptables()}, "nft_json": nft_ruleset()}, id="with-empty-ruleset"),
        pytest.param(
            {"iptables": {NFT: generated_iptables()}, "nft_json": nft_ruleset(("ip", "filter"), ("ip", "nat"))},
            id="iptables-nft-tables",
        ),
    ],
)
def test_addons_passes(kwargs: dict[str, Any]) -> None:
    finding = run(AddonNotReadyForNftables, **kwargs)
    assert finding.status is Status.PASS, finding.message
    assert finding.details["addons"] == []


def test_addons_passes_on_the_reference_dumps() -> None:
    finding = run(
        AddonNotReadyForNftables,
        iptables={NFT: reference("overall.iptables-save.txt").read_text()},
        nft_json=kube_proxy_nft(),
    )
    assert finding.status is Status.PASS, finding.message


CALI = (
    "filter",
    "cali-FORWARD",
    '-A cali-FORWARD -m comment --comment "cali:vjrMJCRpqwy5oRoX" -j cali-from-hep-forward',
)
FLANNEL = ("nat", "FLANNEL-POSTRTG", '-A FLANNEL-POSTRTG -m comment --comment "flanneld masq" -j RETURN')
KUBE_ROUTER = ("filter", "KUBE-ROUTER-INPUT", "-A KUBE-ROUTER-INPUT -d 172.30.0.0/16 -j RETURN")
ISTIO = ("nat", "ISTIO_OUTPUT", "-A ISTIO_OUTPUT -o lo -j RETURN")
CILIUM = (
    "filter",
    "CILIUM_FORWARD",
    '-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster" -j ACCEPT',
)
AWS = ("nat", "AWS-SNAT-CHAIN-0", '-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN')
NODE_CACHE = (
    "raw",
    "OUTPUT",
    "-A OUTPUT -s 169.254.20.10/32 -p udp -m udp --sport 53"
    ' -m comment --comment "NodeLocal DNS Cache: skip conntrack" -j NOTRACK',
)


@pytest.mark.parametrize(
    ("chain", "key", "status"),
    [
        pytest.param(CALI, "calico", Status.FAIL, id="calico-iptables-data-plane"),
        pytest.param(FLANNEL, "flannel", Status.WARN, id="flannel-iptables"),
        pytest.param(KUBE_ROUTER, "kube-router", Status.WARN, id="kube-router"),
        pytest.param(ISTIO, "istio", Status.WARN, id="istio"),
        pytest.param(NODE_CACHE, "nodelocaldns", Status.WARN, id="node-cache-notrack"),
        pytest.param(CILIUM, "cilium", Status.INFO, id="cilium"),
        pytest.param(AWS, "aws-node", Status.INFO, id="aws-vpc-cni"),
    ],
)
def test_addons_fires_on_chains(chain: tuple[str, str, str], key: str, status: Status) -> None:
    table, name, rule = chain
    dump = with_chain(generated_iptables(), table, name, rule)
    finding = run(AddonNotReadyForNftables, iptables={NFT: dump})
    assert finding.status is status, finding.message
    assert [a["key"] for a in finding.details["addons"]] == [key]
    line = dump.splitlines().index(rule) + 1
    assert any(e.source == f"{NFT}:{line}" for e in finding.evidence)


@pytest.mark.parametrize(
    ("table", "key", "status"),
    [
        pytest.param(("ip", "calico"), "calico", Status.INFO, id="calico-nftables-data-plane"),
        pytest.param(("ip", "flannel-ipv4"), "flannel", Status.INFO, id="flannel-enable-nftables"),
        pytest.param(("inet", "cilium"), "cilium", Status.INFO, id="cilium-table"),
    ],
)
def test_addons_fires_on_nft_tables(table: tuple[str, str], key: str, status: Status) -> None:
    finding = run(AddonNotReadyForNftables, iptables={NFT: generated_iptables()}, nft_json=nft_ruleset(table))
    assert finding.status is status, finding.message
    assert finding.details["addons"][0]["key"] == key
    assert finding.evidence[0].source == f"nft-ruleset.json: table {table[0]} {table[1]}"


def test_addons_fires_on_nodelocaldns_interface() -> None:
    host = with_host()
    host["addresses"].append({"interface": "nodelocaldns", "address": "169.254.20.10", "prefix": 32})
    finding = run(AddonNotReadyForNftables, host=host, iptables={NFT: generated_iptables()})
    assert finding.status is Status.WARN and "kubernetes/dns#682" in finding.remediation


def test_addons_fires_blocker_first_and_lists_every_component() -> None:
    dump = generated_iptables()
    for table, name, rule in (CALI, NODE_CACHE, AWS):
        dump = with_chain(dump, table, name, rule)
    finding = run(AddonNotReadyForNftables, iptables={NFT: dump})
    assert finding.status is Status.FAIL
    assert finding.message.startswith("found Calico (blocker)")
    assert {a["key"] for a in finding.details["addons"]} == {"calico", "nodelocaldns", "aws-node"}


def test_addons_empty_chains_are_leftovers_not_a_blocker() -> None:
    finding = run(AddonNotReadyForNftables, iptables={NFT: with_chain(generated_iptables(), "filter", "cali-FORWARD")})
    assert finding.status is Status.INFO and "leftover" in finding.message


def test_addons_not_applicable_without_rules() -> None:
    assert run(AddonNotReadyForNftables).status is Status.NOT_APPLICABLE


def test_addons_fires_on_addresses_alone() -> None:
    host = with_host()
    host["addresses"].append({"interface": "nodelocaldns", "address": "169.254.20.10", "prefix": 32})
    finding = run(AddonNotReadyForNftables, host=host)
    assert finding.status is Status.WARN and "no iptables dump, no nft ruleset" in finding.message


# -- KPA-014: both iptables backends -----------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {NFT: generated_iptables()}}, id="nft-backend-only"),
        pytest.param({"iptables": {NFT: generated_iptables(), LEGACY: EMPTY_LEGACY}}, id="legacy-empty"),
        pytest.param(
            {"iptables": {NFT: generated_iptables(), LEGACY: KUBE_ROUTER_LEGACY}}, id="legacy-kube-router-only"
        ),
        pytest.param(
            {
                "iptables": {LEGACY: generated_iptables()},
                "host": with_host(iptables_version="iptables v1.8.7 (legacy)"),
            },
            id="legacy-backend-only",
        ),
    ],
)
def test_both_backends_passes(kwargs: dict[str, Any]) -> None:
    finding = run(BothIptablesBackendsHoldKubeRules, **kwargs)
    assert finding.status is Status.PASS, finding.message


def test_both_backends_fires_warning_when_only_kubelet_rules_are_in_the_other_backend() -> None:
    finding = run(BothIptablesBackendsHoldKubeRules, iptables={NFT: generated_iptables(), LEGACY: KUBELET_ONLY})
    assert finding.status is Status.WARN, finding.message
    assert finding.details["backends"]["legacy"]["kube_rules"] == 2
    assert finding.details["hint_backends"] == ["legacy"]
    assert "KUBE-IPTABLES-HINT is in iptables-legacy" in finding.message


@pytest.mark.parametrize(
    ("host", "stray"),
    [
        pytest.param(with_host(), "iptables-legacy", id="version-says-nft"),
        pytest.param(with_host(iptables_version="iptables v1.8.7 (legacy)"), "iptables-nft", id="version-says-legacy"),
    ],
)
def test_both_backends_fires_blocker_for_service_chains_in_the_other_backend(host: dict[str, Any], stray: str) -> None:
    dump = generated_iptables()
    finding = run(BothIptablesBackendsHoldKubeRules, host=host, iptables={NFT: dump, LEGACY: dump})
    assert finding.status is Status.FAIL, finding.message
    assert f"KUBE-SVC chains sit in {stray}" in finding.message
    assert any(
        e.source.startswith(f"{LEGACY}:") or e.source.startswith(f"{LEGACY}: nat :KUBE-SVC-") for e in finding.evidence
    )


def test_both_backends_fires_blocker_from_the_hint_when_the_version_is_unknown() -> None:
    legacy = generated_iptables()
    nft = with_chain(generated_iptables(), "mangle", "KUBE-IPTABLES-HINT")
    finding = run(
        BothIptablesBackendsHoldKubeRules, host=with_host(iptables_version=None), iptables={NFT: nft, LEGACY: legacy}
    )
    assert finding.status is Status.FAIL and "iptables-legacy" in finding.message


def test_both_backends_fires_warning_when_the_backend_in_use_is_unknown() -> None:
    dump = generated_iptables()
    finding = run(
        BothIptablesBackendsHoldKubeRules, host=with_host(iptables_version=None), iptables={NFT: dump, LEGACY: dump}
    )
    assert finding.status is Status.WARN and "unknown" in finding.message


def test_both_backends_fires_warning_when_the_other_dump_failed() -> None:
    failed = {"ok": False, "absent": False, "error": "iptables-legacy-save: exit status 1"}
    finding = run(BothIptablesBackendsHoldKubeRules, iptables={NFT: generated_iptables()}, sources=sources(failed))
    assert finding.status is Status.WARN and "could not be read" in finding.message


def test_both_backends_not_applicable_without_dumps() -> None:
    assert run(BothIptablesBackendsHoldKubeRules).status is Status.NOT_APPLICABLE


# -- KPA-015: the other mode's leftovers -------------------------------------------------------


def nftables_mode_host(version: str = "v1.34.2") -> dict[str, Any]:
    host = with_host()
    host["kube_proxy"].update(mode="nftables", version=version)
    return host


@pytest.mark.parametrize(
    ("ruleset", "mode", "dump"),
    [
        pytest.param(
            "overall.iptables-nft-backend.nft.json", ProxyMode.IPTABLES, generated_iptables(), id="iptables-mode"
        ),
        pytest.param("overall.nft.json", ProxyMode.NFTABLES, KUBELET_ONLY, id="nftables-mode-only-kubelet-chains-left"),
    ],
)
def test_leftovers_passes(ruleset: str, mode: ProxyMode, dump: str) -> None:
    host = nftables_mode_host() if mode is ProxyMode.NFTABLES else with_host()
    nft = reference(ruleset).read_text()
    finding = run(LeftoversFromOtherMode, host=host, iptables={NFT: dump}, nft_json=nft, current_mode=mode)
    assert finding.status is Status.PASS, finding.message


def test_leftovers_fires_on_iptables_chains_in_nftables_mode() -> None:
    finding = run(
        LeftoversFromOtherMode,
        host=nftables_mode_host(),
        iptables={NFT: generated_iptables()},
        nft_json=kube_proxy_nft(),
        current_mode=ProxyMode.NFTABLES,
    )
    assert finding.status is Status.WARN, finding.message
    assert "KUBE-SVC" in finding.message and "kube-proxy --cleanup" in finding.remediation
    assert any(e.source.startswith(f"{NFT}:") for e in finding.evidence)


@pytest.mark.parametrize(
    ("version", "status"),
    [
        pytest.param("v1.34.2", Status.WARN, id="current-kube-proxy-deletes-it-on-restart"),
        pytest.param("v1.28.9", Status.FAIL, id="pre-1.29-never-deletes-it"),
        pytest.param(None, Status.WARN, id="version-unknown"),
    ],
)
def test_leftovers_fires_on_kube_proxy_table_in_iptables_mode(version: str | None, status: Status) -> None:
    host = with_host()
    host["kube_proxy"]["version"] = version
    finding = run(LeftoversFromOtherMode, host=host, iptables={NFT: generated_iptables()}, nft_json=kube_proxy_nft())
    assert finding.status is status, finding.message
    assert finding.remediation == "Delete it: nft delete table ip kube-proxy."
    assert any(e.source == "nft-ruleset.json: table ip kube-proxy" for e in finding.evidence)


def test_leftovers_fires_on_both_families_tables() -> None:
    nft = nft_ruleset(("ip", "kube-proxy"), ("ip6", "kube-proxy"))
    finding = run(LeftoversFromOtherMode, iptables={NFT: generated_iptables()}, nft_json=nft)
    assert finding.status is Status.WARN
    assert "nft delete table ip6 kube-proxy" in finding.remediation


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {NFT: generated_iptables()}}, id="iptables-mode-no-nft-ruleset"),
        pytest.param({"current_mode": None, "host": with_host(kube_proxy={"running": False})}, id="mode-unknown"),
    ],
)
def test_leftovers_not_applicable(kwargs: dict[str, Any]) -> None:
    assert run(LeftoversFromOtherMode, **kwargs).status is Status.NOT_APPLICABLE


def test_leftovers_fires_when_mode_is_unknown_and_both_exist() -> None:
    finding = run(
        LeftoversFromOtherMode,
        host=with_host(kube_proxy={"running": False}),
        current_mode=None,
        iptables={NFT: generated_iptables()},
        nft_json=kube_proxy_nft(),
    )
    assert finding.status is Status.WARN and "stale" in finding.message


# -- KPA-024: old iptables-save ----------------------------------------------------------------


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("iptables v1.8.8 (nf_tables)", id="1.8.8"),
        pytest.param("iptables v1.8.10 (nf_tables)", id="1.8.10"),
    ],
)
def test_old_iptables_save_passes(version: str) -> None:
    assert run(OldIptablesSave, host=with_host(iptables_version=version)).status is Status.PASS


@pytest.mark.parametrize(
    ("version", "status"),
    [
        pytest.param("iptables v1.8.7 (nf_tables)", Status.WARN, id="nft-backend-1.8.7"),
        pytest.param("iptables v1.8.4", Status.WARN, id="backend-unknown-1.8.4"),
        pytest.param("iptables v1.8.4 (legacy)", Status.INFO, id="legacy-backend-1.8.4"),
    ],
)
def test_old_iptables_save_fires(version: str, status: Status) -> None:
    finding = run(OldIptablesSave, host=with_host(iptables_version=version))
    assert finding.status is status, finding.message
    assert finding.evidence[0].source == "host.json: iptables_version"


def test_old_iptables_save_fires_when_a_dump_was_refused() -> None:
    refused = {"ok": False, "error": "Table `nat' is incompatible, use 'nft' tool."}
    srcs = {"iptables-nft-save": refused, "nft": {"ok": True}}
    finding = run(OldIptablesSave, sources=srcs)
    assert finding.status is Status.WARN
    assert any(e.source == "meta.json: sources.iptables-nft-save" for e in finding.evidence)


def test_old_iptables_save_not_applicable_without_iptables() -> None:
    assert run(OldIptablesSave, host=with_host(iptables_version=None)).status is Status.NOT_APPLICABLE


# -- KPA-026: no legacy iptables ---------------------------------------------------------------

ABSENT = {"ok": False, "absent": True, "error": "not installed"}
NO_MODULES = "can't initialize iptables table `filter': Table does not exist (do you need to insmod?)"


def rhel10_host(**changes: Any) -> dict[str, Any]:
    """An RHEL 10-like host: nf_tables only, iptables-nft userspace."""
    return with_host(iptables_version="iptables v1.8.11 (nf_tables)", **changes)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param(
            {"host": with_host(modules={"loaded": ["nf_tables", "ip_tables", "nf_conntrack"], "builtin": []})},
            id="ip_tables-loaded",
        ),
        pytest.param({"sources": sources({"ok": True})}, id="legacy-save-works"),
        pytest.param(
            {"host": with_host(iptables_version="iptables v1.8.7 (legacy)"), "sources": sources(ABSENT)},
            id="legacy-host",
        ),
    ],
)
def test_nftables_only_host_passes(kwargs: dict[str, Any]) -> None:
    finding = run(NftablesOnlyHost, **kwargs)
    assert finding.status is Status.PASS, finding.message


def test_nftables_only_host_fires_info_without_iptables_components() -> None:
    finding = run(NftablesOnlyHost, host=rhel10_host(), iptables={NFT: generated_iptables()}, sources=sources(ABSENT))
    assert finding.status is Status.INFO, finding.message
    assert "only iptables-nft works" in finding.message and finding.details["components"] == []


def test_nftables_only_host_fires_per_iptables_component() -> None:
    dump = with_chain(generated_iptables(), *FLANNEL)
    dump = with_chain(dump, *NODE_CACHE)
    dump = with_chain(dump, "filter", "INPUT", "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT")
    legacy_failed = {"ok": False, "absent": False, "error": NO_MODULES}
    finding = run(NftablesOnlyHost, host=rhel10_host(), iptables={NFT: dump}, sources=sources(legacy_failed))
    assert finding.status is Status.WARN, finding.message
    assert [c["key"] for c in finding.details["components"]] == ["flannel", "nodelocaldns"]
    assert finding.details["foreign_iptables_rules"] == 3  # flannel's, node-cache's and the ssh rule
    assert "flannel" in finding.message and "other iptables rules" in finding.message


def test_nftables_only_host_says_when_iptables_is_missing_altogether() -> None:
    finding = run(NftablesOnlyHost, host=with_host(iptables_version=None), sources=sources(ABSENT))
    assert finding.status is Status.INFO and "iptables mode cannot run here" in finding.message


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"host": with_host(modules={"loaded": None, "builtin": None})}, id="no-module-list"),
        pytest.param({}, id="legacy-source-not-collected"),
    ],
)
def test_nftables_only_host_not_applicable(kwargs: dict[str, Any]) -> None:
    assert run(NftablesOnlyHost, **kwargs).status is Status.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("chain", "table", "key"),
    [
        pytest.param(CALI, ("ip", "calico"), "calico", id="calico-both-data-planes"),
        pytest.param(FLANNEL, ("ip", "flannel-ipv4"), "flannel", id="flannel-both"),
    ],
)
def test_addons_fires_warning_when_both_data_planes_show(
    chain: tuple[str, str, str], table: tuple[str, str], key: str
) -> None:
    dump = with_chain(generated_iptables(), *chain)
    finding = run(AddonNotReadyForNftables, iptables={NFT: dump}, nft_json=nft_ruleset(table))
    assert finding.status is Status.WARN, finding.message
    assert finding.details["addons"][0]["key"] == key and "leftovers" in finding.remediation
