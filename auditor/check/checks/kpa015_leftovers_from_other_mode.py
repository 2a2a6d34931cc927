"""KPA-015: rules of the mode kube-proxy is not running are still on the node.

What it checks: with kube-proxy in nftables mode, iptables-mode Service chains
(`KUBE-SERVICES`, `KUBE-SVC-*`, `KUBE-SEP-*`, `KUBE-NODEPORTS`) in any iptables dump;
with kube-proxy in iptables mode (or ipvs), a `table ip kube-proxy` / `table ip6
kube-proxy` in the nft ruleset, left over from a trial or a rollback.

Why it matters: leftover rules keep intercepting Service traffic with stale endpoints
until they are deleted. Starting kube-proxy in one mode deletes the other modes' rules,
but only from kube-proxy 1.29 on (older releases do not know the nftables table), and
only through the iptables backend its image selects. A kube-proxy older than 1.29 in
iptables mode next to a kube-proxy nftables table is a blocker: nothing will remove it.

Remediation: delete the stale state: `nft delete table ip kube-proxy` and `nft delete
table ip6 kube-proxy`, or for iptables leftovers `kube-proxy --cleanup` (it removes
iptables, ipvs and nftables rules, then exits) run with the backend that holds them.

References: KEP-3866 "Switching between kube-proxy modes" and PRR,
cmd/kube-proxy/app/server_linux.go (platformCleanup), pkg/proxy/nftables/cleanup.go,
https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import KEP_3866, NFTABLES_MODE_SINCE, running_mode, running_version
from auditor.check.checks._netfilter import find_chains, nft_table_evidence, nft_tables
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Severity

_SERVICE_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS")
_SERVICE_PREFIXES = ("KUBE-SVC-", "KUBE-SEP-")
NFT_CLEANUP = "nft delete table ip kube-proxy; nft delete table ip6 kube-proxy"
IPTABLES_CLEANUP = "kube-proxy --cleanup (run with the iptables backend that holds the chains)"


def _is_service_chain(table: str, name: str) -> bool:
    return table in ("nat", "filter") and (name in _SERVICE_CHAINS or name.startswith(_SERVICE_PREFIXES))


class LeftoversFromOtherMode(Check):
    id = CheckID("KPA-015")
    title = "Rules of the mode kube-proxy does not run are left on the node"
    severity = Severity.BLOCKER
    remediation = f"Delete the stale state: {NFT_CLEANUP}; for iptables leftovers, {IPTABLES_CLEANUP}."
    docs = f"{KEP_3866}#switching-between-kube-proxy-modes"

    def run(self, ctx: CheckContext) -> Outcome:
        mode, mode_evidence = running_mode(ctx)
        chains = [
            c for c in find_chains(ctx, _is_service_chain) if c.chain.lines or c.chain.name.startswith("KUBE-SVC-")
        ]
        tables = nft_tables(ctx, lambda family, name: name == "kube-proxy" and family in ("ip", "ip6"))
        chain_evidence = [c.evidence("iptables-mode chain") for c in chains[:5]]
        table_evidence = [nft_table_evidence(ctx, f, n, "nftables-mode table") for f, n in tables]
        details: dict[str, Any] = {
            "mode": mode,
            "iptables_chains": [f"{c.where} {c.chain.name}" for c in chains],
            "nft_tables": [f"{f} {n}" for f, n in tables],
        }
        if mode == "nftables":
            if not ctx.iptables:
                return self.not_applicable(
                    "kube-proxy runs nftables mode, but the snapshot has no iptables dump to search"
                )
            if not chains:
                return self.passed(
                    "kube-proxy runs nftables mode and no iptables-mode Service chains are left", mode_evidence
                )
            svc = sum(c.chain.name.startswith("KUBE-SVC-") for c in chains)
            return self.warn(
                f"kube-proxy runs nftables mode, yet {len(chains)} iptables-mode Service chains ({svc} KUBE-SVC) are"
                " still there: they keep intercepting Service traffic until removed",
                mode_evidence,
                *chain_evidence,
                remediation=f"Remove them: {IPTABLES_CLEANUP}, or flush and delete the KUBE-* chains"
                " with that backend.",
                **details,
            )
        if mode is None:
            if chains and tables:
                return self.warn(
                    "kube-proxy's mode is unknown and both iptables-mode chains and a kube-proxy nftables table exist:"
                    " one of them is stale",
                    mode_evidence,
                    *chain_evidence,
                    *table_evidence,
                    **details,
                )
            return self.not_applicable("kube-proxy's mode is unknown: cannot tell which mode's rules are left over")
        # iptables or ipvs mode: the nftables table is the leftover
        if ctx.nft is None:
            return self.not_applicable(f"kube-proxy runs {mode} mode, but the snapshot has no nft ruleset to search")
        if not tables:
            return self.passed(f"kube-proxy runs {mode} mode and no kube-proxy nftables table is left", mode_evidence)
        version, version_evidence = running_version(ctx)
        names = " and ".join(f"table {f} {n}" for f, n in tables)
        remediation = "Delete it: " + "; ".join(f"nft delete table {f} {n}" for f, n in tables) + "."
        if version is not None and version < NFTABLES_MODE_SINCE:
            return self.failed(
                f"kube-proxy {version} runs {mode} mode next to {names}: releases before 1.29 do not delete it, so it"
                " keeps intercepting Service traffic",
                mode_evidence,
                version_evidence,
                *table_evidence,
                remediation=remediation,
                **details,
            )
        known = (
            "" if version is not None else " (kube-proxy's version is unknown: before 1.29 it would never be removed)"
        )
        return self.warn(
            f"kube-proxy runs {mode} mode next to {names}, left from a trial or rollback: it intercepts Service traffic"
            f" until kube-proxy restarts and deletes it{known}",
            mode_evidence,
            version_evidence,
            *table_evidence,
            remediation=remediation,
            **details,
        )
