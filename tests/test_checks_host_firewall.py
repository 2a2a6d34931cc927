"""KPA-011: host firewalls that kube-proxy's iptables ACCEPT rules bypass today. Snapshots with
no firewall, firewalls that block (iptables, firewalld, ufw), firewalls that allow or may
allow, firewalls kube-proxy never bypassed, and missing data."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.check.checks.kpa011_host_firewall_blocks_services import HostFirewallBlocksServices
from auditor.check.runner import run_check
from auditor.findings import Finding, Status
from auditor.model import ProxyMode
from tests.checkctx import make_context
from tests.dumps import generated_iptables, with_chain
from tests.nft_build import ACCEPT, DROP, REJECT, Table, ct, jump, match, meta, payload, ruleset

NFT = "iptables-nft-save.txt"
LEGACY = "iptables-legacy-save.txt"
EMPTY_NFT = ruleset()
HEALTH_CHECKS = {50005, 50009}
ESTABLISHED = "-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"


def with_policy(dump: str, chain: str, policy: str, table: str = "filter") -> str:
    """`dump` with the built-in `chain` of `table` set to `policy`."""
    lines = dump.split("\n")
    start = lines.index(f"*{table}")
    at = next(i for i in range(start, len(lines)) if lines[i].startswith(f":{chain} "))
    lines[at] = f":{chain} {policy} [0:0]"
    return "\n".join(lines)


def firewall(chain: str, *rules: str, policy: str = "DROP") -> str:
    """The generated kube-proxy dump with `chain` (INPUT / FORWARD) dropping by default."""
    return with_chain(with_policy(generated_iptables(12), chain, policy), "filter", chain, *rules)


def run(iptables: dict[str, str] | str, nft: str | None = EMPTY_NFT, **kwargs: Any) -> Finding:
    dumps = {NFT: iptables} if isinstance(iptables, str) else iptables
    return run_check(HostFirewallBlocksServices(), make_context(iptables=dumps, nft_json=nft, **kwargs))


FIREWALLD_IPTABLES = with_chain(
    with_chain(
        with_chain(
            generated_iptables(12),
            "filter",
            "IN_public",
            "-A IN_public -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW,UNTRACKED -j ACCEPT",
        ),
        "filter",
        "INPUT_ZONES",
        "-A INPUT_ZONES -i eth0 -g IN_public",
        "-A INPUT_ZONES -g IN_public",
    ),
    "filter",
    "INPUT",
    ESTABLISHED.format(chain="INPUT"),
    "-A INPUT -i lo -j ACCEPT",
    "-A INPUT -j INPUT_ZONES",
    "-A INPUT -m conntrack --ctstate INVALID -j DROP",
    "-A INPUT -j REJECT --reject-with icmp-host-prohibited",
)
UFW = with_chain(
    with_chain(
        with_policy(generated_iptables(12), "INPUT", "DROP"),
        "filter",
        "ufw-user-input",
        "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A ufw-user-input -j RETURN",
    ),
    "filter",
    "INPUT",
    "-A INPUT -j ufw-user-input",
    '-A INPUT -m limit --limit 3/min -j LOG --log-prefix "[UFW BLOCK] "',
)
FIREWALLD_NFT = ruleset(
    Table("inet", "firewalld")
    .chain("filter_INPUT", "input", prio=10)
    .chain("filter_FORWARD", "forward", prio=10, policy="drop")
    .chain("filter_IN_public")
    .rule("filter_INPUT", match(ct("state"), {"set": ["established", "related"]}), ACCEPT)
    .rule("filter_INPUT", match(ct("status"), "dnat", "in"), ACCEPT)
    .rule("filter_INPUT", match(meta("iifname"), "lo"), ACCEPT)
    .rule("filter_INPUT", jump("filter_IN_public"))
    .rule("filter_INPUT", REJECT)
    .rule("filter_IN_public", match(payload("tcp", "dport"), 22), ACCEPT)
    .rule("filter_FORWARD", match(ct("state"), ["established", "related"], "in"), ACCEPT)
    .rule("filter_FORWARD", match(ct("status"), "dnat", "in"), ACCEPT)
)


@pytest.mark.parametrize(
    ("iptables", "nft"),
    [
        pytest.param(generated_iptables(12), EMPTY_NFT, id="no-firewall"),
        pytest.param(
            firewall("INPUT", "-A INPUT -i eth9 -j DROP", policy="ACCEPT"), EMPTY_NFT, id="conditional-drop-only"
        ),
        pytest.param(
            generated_iptables(12),
            ruleset(
                Table("inet", "filter").chain("input", "input").rule("input", match(payload("tcp", "dport"), 22), DROP)
            ),
            id="nft-table-without-default-drop",
        ),
        pytest.param(
            generated_iptables(12),
            ruleset(Table("ip", "kube-proxy").chain("filter-input", "input", policy="drop")),
            id="kube-proxy-table-ignored",
        ),
    ],
)
def test_host_firewall_passes(iptables: str, nft: str) -> None:
    finding = run(iptables, nft)
    assert finding.status is Status.PASS, finding.message
    assert "blocked_ports" not in finding.details


@pytest.mark.parametrize(
    ("dump", "hook", "ports", "label"),
    [
        pytest.param(
            firewall("INPUT", ESTABLISHED.format(chain="INPUT"), "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"),
            "input",
            HEALTH_CHECKS,
            "filter INPUT",
            id="input-policy-drop",
        ),
        pytest.param(
            FIREWALLD_IPTABLES, "input", HEALTH_CHECKS, "(firewalld)", id="firewalld-iptables-trailing-reject"
        ),
        pytest.param(UFW, "input", HEALTH_CHECKS, "(ufw)", id="ufw-policy-drop"),
        pytest.param(
            firewall("FORWARD", ESTABLISHED.format(chain="FORWARD")),
            "forward",
            {30001, 30002, 30003, 30004, 80},
            "filter FORWARD",
            id="forward-policy-drop",
        ),
        pytest.param(
            firewall("FORWARD", "-A FORWARD -p tcp -m tcp --dport 30000:32767 -j ACCEPT"),
            "forward",
            {30001, 80},
            "filter FORWARD",
            id="forward-allows-nodeport-range-but-dnat-changed-the-port",
        ),
    ],
)
def test_host_firewall_fires(dump: str, hook: str, ports: set[int], label: str) -> None:
    finding = run(dump)
    assert finding.status is Status.FAIL, finding.message
    rows = finding.details["blocked_ports"]
    assert rows and {r["hook"] for r in rows} == {hook} and {r["result"] for r in rows} == {"blocked"}
    assert ports <= {r["port"] for r in rows}
    assert label in finding.message and all(r["bypassed_today"] for r in rows)
    assert any(e.what.endswith("default drop") and e.source.startswith(NFT) for e in finding.evidence)
    assert "30000-32767" in (finding.remediation or "")


@pytest.mark.parametrize(
    ("iptables", "nft", "results", "fragment"),
    [
        pytest.param(
            firewall("INPUT", "-A INPUT -p tcp -m multiport --dports 30000:32767,50000:50100 -j ACCEPT"),
            EMPTY_NFT,
            set(),
            "appears to allow",
            id="input-allows-the-ports",
        ),
        pytest.param(
            firewall("FORWARD", "-A FORWARD -d 10.128.0.0/9 -j ACCEPT"),
            EMPTY_NFT,
            set(),
            "appears to allow",
            id="forward-allows-pod-cidr",
        ),
        pytest.param(
            firewall("FORWARD", "-A FORWARD -i eth0 -o cni0 -j ACCEPT"),
            EMPTY_NFT,
            {"unclear"},
            "cannot tell",
            id="forward-allows-by-interface",
        ),
        pytest.param(
            firewall("INPUT", "-A INPUT -j FW", "-A INPUT -j DROP", policy="ACCEPT").replace(
                ":KUBE-FORWARD - [0:0]",
                ":KUBE-FORWARD - [0:0]\n:FW - [0:0]\n"
                "-A FW -m set --match-set lb-checkers src -j ACCEPT\n-A FW -j RETURN",
            ),
            EMPTY_NFT,
            {"unclear"},
            "cannot tell",
            id="ipset-allow-then-trailing-drop",
        ),
        pytest.param(
            generated_iptables(12), FIREWALLD_NFT, {"blocked"}, "today already", id="firewalld-nft-blocks-today-too"
        ),
        pytest.param(
            {
                NFT: generated_iptables(12),
                LEGACY: "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
            },
            EMPTY_NFT,
            {"blocked"},
            "today already",
            id="other-backend-blocks-today-too",
        ),
        pytest.param(generated_iptables(12), None, set(), "nft ruleset is not in the snapshot", id="nft-not-collected"),
    ],
)
def test_host_firewall_warns(iptables: dict[str, str] | str, nft: str | None, results: set[str], fragment: str) -> None:
    finding = run(iptables, nft)
    assert finding.status is Status.WARN and fragment in finding.message, finding.message
    assert {r["result"] for r in finding.details.get("blocked_ports", [])} == results


def test_allowances_are_named_in_the_evidence() -> None:
    finding = run(firewall("FORWARD", "-A FORWARD -i eth0 -o cni0 -j ACCEPT"))
    allow = [e for e in finding.evidence if e.what == "allow rule"]
    assert allow and allow[0].value == "-A FORWARD -i eth0 -o cni0 -j ACCEPT" and allow[0].source.startswith(f"{NFT}:")
    row = finding.details["blocked_ports"][0]
    assert row["allow_rule"] == "-A FORWARD -i eth0 -o cni0 -j ACCEPT" and row["drop_rule"] == "policy drop"


def test_firewalld_nft_health_checks_are_blocked_and_named() -> None:
    finding = run(generated_iptables(12), FIREWALLD_NFT)
    rows = finding.details["blocked_ports"]
    assert {(r["port"], r["hook"]) for r in rows} == {
        (50005, "input"),
        (50009, "input"),
    }  # forward: ct status dnat accept
    assert rows[0]["drop_rule"] == "reject with icmpx admin-prohibited"
    assert rows[0]["dropped_by"].endswith("inet firewalld filter_INPUT handle 104")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"iptables": {}, "current_mode": ProxyMode.NFTABLES}, id="no-iptables-state"),
        pytest.param({"iptables": {NFT: generated_iptables(1)}}, id="nothing-kube-proxy-accepts"),
    ],
)
def test_not_applicable(kwargs: dict[str, Any]) -> None:
    finding = run_check(HostFirewallBlocksServices(), make_context(nft_json=EMPTY_NFT, **kwargs))
    assert finding.status is Status.NOT_APPLICABLE, finding.message


def test_unreadable_rules_are_not_a_pass() -> None:
    finding = run(with_chain(generated_iptables(12), "filter", "FW", "-A FW -p"))
    assert finding.status is Status.WARN and "could not be read" in finding.message
    assert any(e.what == "could not read" and e.source == NFT for e in finding.evidence)


def test_docker_chains_alone_are_not_a_firewall() -> None:
    dump = with_chain(generated_iptables(12), "filter", "DOCKER-USER", "-A DOCKER-USER -j RETURN")
    assert run(dump).status is Status.PASS
    finding = run(with_policy(dump, "FORWARD", "DROP"))
    assert finding.status is Status.FAIL and "(Docker)" in finding.message
