"""Who wrote an iptables rule: kube-proxy's and kubelet's chains and jump rules.

Shared by KPA-011 (host firewalls: kube-proxy's own ACCEPTs do not count) and KPA-012
(third-party rules that use kube-proxy's chains). FORMATS.md 2.1 lists the chains and the
jump rules kube-proxy and kubelet add to the built-in chains.
"""

from __future__ import annotations

from auditor.parse.iptables_save import Rule

#: the fixed chains of kube-proxy's iptables mode; all of them go away with the switch
KUBE_PROXY_CHAINS = frozenset(
    {
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
        "KUBE-MARK-DROP",
        "KUBE-FORWARD",
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-PROXY-FIREWALL",
        "KUBE-PROXY-CANARY",
    }
)
#: per-Service chains (hash suffix)
KUBE_PROXY_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")
#: kubelet's chains; they stay after the switch and hold nothing Service-related
KUBELET_CHAINS = frozenset({"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"})
#: the iptables tables; iptables-nft shows them as nft tables of the same name
IPTABLES_TABLES = frozenset({"filter", "nat", "mangle", "raw", "security"})

#: the jump rules kube-proxy (and kubelet, for KUBE-FIREWALL) insert into built-in chains
OWN_JUMPS: dict[tuple[str, str], frozenset[str]] = {
    ("filter", "INPUT"): frozenset(
        {"KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"}
    ),
    ("filter", "FORWARD"): frozenset(
        {"KUBE-EXTERNAL-SERVICES", "KUBE-SERVICES", "KUBE-FORWARD", "KUBE-PROXY-FIREWALL"}
    ),
    ("filter", "OUTPUT"): frozenset({"KUBE-SERVICES", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"}),
    ("nat", "PREROUTING"): frozenset({"KUBE-SERVICES"}),
    ("nat", "OUTPUT"): frozenset({"KUBE-SERVICES"}),
    ("nat", "POSTROUTING"): frozenset({"KUBE-POSTROUTING"}),
}
#: match modules kube-proxy's jump rules use
_JUMP_MODULES = frozenset({"comment", "conntrack"})


def kube_proxy_chain(name: str) -> bool:
    """A chain kube-proxy's iptables mode writes (and the switch deletes)."""
    return name in KUBE_PROXY_CHAINS or name.startswith(KUBE_PROXY_PREFIXES)


def owned_chain(name: str) -> bool:
    """A chain of kube-proxy or kubelet; other KUBE-* names (kube-router's KUBE-ROUTER-*) are not."""
    return kube_proxy_chain(name) or name in KUBELET_CHAINS


def is_own_jump(rule: Rule) -> bool:
    """kube-proxy's or kubelet's jump from a built-in chain: the expected target, and no
    condition but a comment and `--ctstate NEW`."""
    targets = OWN_JUMPS.get((rule.table, rule.chain))
    if targets is None or rule.target not in targets:
        return False
    if rule.src or rule.dst or rule.protocol or rule.in_interface or rule.out_interface or rule.other:
        return False
    for opt in rule.options:
        if opt.module not in _JUMP_MODULES:
            return False
        if opt.module == "conntrack" and (opt.name != "--ctstate" or opt.negated or opt.value != "NEW"):
            return False
    return True
