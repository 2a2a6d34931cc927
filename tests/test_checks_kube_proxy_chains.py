"""KPA-012: rules outside kube-proxy that use its iptables chains, its masquerade mark or its
place in the nat hooks. Generated and reference dumps with foreign rules spliced in, in
both iptables backends and in nftables tables."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa012_third_party_uses_kube_proxy_chains import ThirdPartyUsesKubeProxyChains
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from tests.checkctx import make_context, with_host
from tests.dumps import generated_iptables, with_chain
from tests.helpers import reference
from tests.nft_build import ACCEPT, Table, match, meta, payload, ruleset

NFT = "iptables-nft-save.txt"
LEGACY = "iptables-legacy-save.txt"
EMPTY_NFT = ruleset()
SVC = next(line[1:].split()[0] for line in generated_iptables(12).splitlines() if line.startswith(":KUBE-SVC-"))
SERVICES_JUMP = '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'


def before_services_jump(dump: str, rule: str, chain: str = "DOCKER") -> str:
    """`dump` with `rule` in nat PREROUTING ahead of kube-proxy's KUBE-SERVICES jump."""
    dump = with_chain(dump, "nat", chain)
    return dump.replace(SERVICES_JUMP, f"{rule}\n{SERVICES_JUMP}")


def after_services_jump(dump: str, rule: str, chain: str = "DOCKER") -> str:
    return with_chain(with_chain(dump, "nat", chain), "nat", "PREROUTING", rule)


def run(iptables: dict[str, str] | str | None = None, nft: str | None = EMPTY_NFT, **kwargs: Any) -> Finding:
    dumps = (
        {NFT: generated_iptables(12)}
        if iptables is None
        else {NFT: iptables}
        if isinstance(iptables, str)
        else iptables
    )
    return run_check(ThirdPartyUsesKubeProxyChains(), make_context(iptables=dumps, nft_json=nft, **kwargs))


NODELOCALDNS = with_chain(
    generated_iptables(12),
    "nat",
    "NODELOCALDNS",
    f"-A NODELOCALDNS -d 169.254.20.10/32 -p udp -m udp --dport 53 -j {SVC}",
    "-A NODELOCALDNS -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
)
KUBE_ROUTER = with_chain(
    generated_iptables(12),
    "filter",
    "KUBE-ROUTER-INPUT",
    "-A KUBE-ROUTER-INPUT -j MARK --set-xmark 0x10000/0x10000",
    "-A KUBE-ROUTER-INPUT -m mark --mark 0x20000/0x20000 -j ACCEPT",
    "-A KUBE-ROUTER-INPUT -j KUBE-FIREWALL",
)
EARLY_DNAT = Table("ip", "lb").chain("pre", "prerouting", type="nat", prio=-100).chain("redir")
EARLY_DNAT.rule("pre", match(payload("ip", "daddr"), "1.2.3.4"), {"jump": {"target": "redir"}})
EARLY_DNAT.rule(
    "redir", match(payload("tcp", "dport"), 80), {"dnat": {"family": "ip", "addr": "10.0.0.5", "port": 8080}}
)
LATE_DNAT = Table("ip", "lb").chain("pre", "prerouting", type="nat", prio=-90)
LATE_DNAT.rule("pre", match(payload("tcp", "dport"), 80), {"dnat": {"family": "ip", "addr": "10.0.0.5", "port": 8080}})
MARKS = Table("inet", "mesh").chain("fwd", "forward")
MARKS.rule("fwd", match({"&": [meta("mark"), 16384]}, 16384), ACCEPT)


@pytest.mark.parametrize(
    ("iptables", "nft"),
    [
        pytest.param(None, EMPTY_NFT, id="generated"),
        pytest.param("reference", EMPTY_NFT, id="reference"),
        pytest.param(KUBE_ROUTER, EMPTY_NFT, id="kube-router-chains-and-marks"),
        pytest.param(
            after_services_jump(generated_iptables(12), "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"),
            EMPTY_NFT,
            id="docker-after-kube-proxy",
        ),
        pytest.param(None, ruleset(LATE_DNAT), id="nft-dnat-after-dstnat"),
        pytest.param(
            None,
            ruleset(Table("ip", "kube-proxy").chain("nat-prerouting", "prerouting", type="nat", prio=-100)),
            id="kube-proxy-table-itself",
        ),
    ],
)
def test_kube_proxy_chains_passes(iptables: str | None, nft: str) -> None:
    if iptables == "reference":
        iptables = reference("overall.iptables-save.txt").read_text()
    finding = run(iptables, nft)
    assert finding.status is Status.PASS, finding.message
    assert finding.details["rules"] == []


@pytest.mark.parametrize(
    ("iptables", "targets"),
    [
        pytest.param(NODELOCALDNS, {SVC, "KUBE-MARK-MASQ"}, id="nodelocaldns-jumps-to-svc-and-mark-masq"),
        pytest.param(
            {
                NFT: generated_iptables(12),
                LEGACY: "*nat\n:PREROUTING ACCEPT [0:0]\n:CUSTOM - [0:0]\n-A PREROUTING -j CUSTOM\n"
                "-A CUSTOM -g KUBE-SEP-ABCDEFGHIJKLMNOP\nCOMMIT\n",
            },
            {"KUBE-SEP-ABCDEFGHIJKLMNOP"},
            id="other-backend-goto-sep",
        ),
        pytest.param(
            with_chain(generated_iptables(12), "nat", "PREROUTING", "-A PREROUTING -d 10.96.0.0/12 -j KUBE-SERVICES"),
            {"KUBE-SERVICES"},
            id="extra-conditions-on-a-kube-services-jump",
        ),
        pytest.param(
            with_chain(generated_iptables(12), "mangle", "PREROUTING", "-A PREROUTING -p udp -j KUBE-MARK-DROP"),
            {"KUBE-MARK-DROP"},
            id="mangle-jumps-to-mark-drop",
        ),
    ],
)
def test_jumps_to_deleted_chains_fire(iptables: dict[str, str] | str, targets: set[str]) -> None:
    finding = run(iptables)
    assert finding.status is Status.FAIL, finding.message
    rows = finding.details["rules"]
    assert {r["severity"] for r in rows} == {"blocker"}
    assert {r["rule"].split()[-1] for r in rows} == targets
    for row in rows:
        assert any(e.value == row["rule"] and e.source == f"{row['source']}:{row['line']}" for e in finding.evidence)


@pytest.mark.parametrize(
    ("iptables", "nft", "fragment"),
    [
        pytest.param(
            with_chain(
                generated_iptables(12), "mangle", "PREROUTING", "-A PREROUTING -m mark --mark 0x4000/0x4000 -j ACCEPT"
            ),
            EMPTY_NFT,
            "mark 0x4000",
            id="mangle-matches-mark",
        ),
        pytest.param(
            with_chain(generated_iptables(12), "nat", "MESH", "-A MESH -j MARK --set-xmark 0x4000/0x4000"),
            EMPTY_NFT,
            "mark 0x4000",
            id="sets-mark",
        ),
        pytest.param(
            before_services_jump(generated_iptables(12), "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER"),
            EMPTY_NFT,
            "before kube-proxy's KUBE-SERVICES jump",
            id="docker-before-kube-proxy",
        ),
        pytest.param(
            before_services_jump(
                generated_iptables(12), "-A PREROUTING -d 1.2.3.4/32 -p tcp -j DNAT --to-destination 10.0.0.5:80"
            ),
            EMPTY_NFT,
            "DNATs before",
            id="dnat-before-kube-proxy",
        ),
        pytest.param(None, ruleset(EARLY_DNAT), "priority dstnat or earlier", id="nft-dnat-at-dstnat"),
        pytest.param(None, ruleset(MARKS), "mark 0x4000", id="nft-matches-mark"),
        pytest.param(
            None,
            ruleset(
                Table("inet", "ops").chain("in", "input").rule("in", {"accept": None}, comment="kube-proxy bypass")
            ),
            "mentions kube-proxy",
            id="nft-mentions-kube-proxy",
        ),
    ],
)
def test_marks_and_nat_order_warn(iptables: str | None, nft: str, fragment: str) -> None:
    finding = run(iptables, nft)
    assert finding.status is Status.WARN and fragment in finding.message, finding.message
    assert {r["severity"] for r in finding.details["rules"]} == {"warning"}


def test_configured_masquerade_bit_changes_the_mark() -> None:
    dump = with_chain(
        generated_iptables(12),
        "mangle",
        "PREROUTING",
        "-A PREROUTING -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A PREROUTING -m mark --mark 0x8000/0x8000 -j ACCEPT",
    )
    host = with_host()
    host["kube_proxy"]["config"]["iptables"] = {"masqueradeBit": 15}
    finding = run(dump, host=host)
    assert finding.status is Status.WARN
    assert [r["rule"] for r in finding.details["rules"]] == ["-A PREROUTING -m mark --mark 0x8000/0x8000 -j ACCEPT"]
    assert any(e.what.startswith("masquerade mark 0x8000") for e in finding.evidence)


def test_missing_sources_are_said() -> None:
    finding = run(nft=None)
    assert finding.status is Status.PASS and "nftables tables were not checked" in finding.message
    no_iptables = run_check(ThirdPartyUsesKubeProxyChains(), make_context(iptables={}, nft_json=EMPTY_NFT))
    assert no_iptables.status is Status.WARN and "no iptables dump" in no_iptables.message
    nothing = run_check(ThirdPartyUsesKubeProxyChains(), make_context(iptables={}))
    assert nothing.status is Status.WARN and "nothing could be checked" in nothing.message
    no_kube_proxy = run_check(ThirdPartyUsesKubeProxyChains(), make_context(iptables={}, current_mode=None))
    assert no_kube_proxy.status is Status.WARN  # HEALTHY_HOST still says kube-proxy runs in iptables mode
    gone = with_host()
    gone["kube_proxy"] = {"running": False}
    idle = run_check(ThirdPartyUsesKubeProxyChains(), make_context(host=gone, iptables={}, current_mode=None))
    assert idle.status is Status.NOT_APPLICABLE


def test_unreadable_chain_is_reported() -> None:
    finding = run(with_chain(generated_iptables(12), "nat", "BROKEN", "-A BROKEN -j"))
    assert any(e.what == "could not read chain nat BROKEN" and e.source == NFT for e in finding.evidence)
