"""KPA-027: the rollback plan, and whether the rollback target can clean up after nftables mode.

What it checks: the kube-proxy version the node would roll back to (the one running
today), against 1.29, the first release that knows nftables mode and deletes
`table ip kube-proxy` / `table ip6 kube-proxy` when it starts in iptables or ipvs mode.
The finding always prints the rollback commands.

Why it matters: restarting kube-proxy with `mode: nftables` deletes the iptables (and
ipvs) rules of the old mode, no reboot needed; restarting a 1.29+ kube-proxy in iptables
mode deletes the nftables tables again. A rollback to an older kube-proxy, or to a
third-party proxy, leaves the tables in place and they keep intercepting Service traffic
until deleted by hand; a kube-proxy that does not know nftables mode refuses a config
that asks for it. Each node can be switched on its own: Service proxying does not depend
on other nodes' modes, so switch one node first.

Remediation: to roll back, set `mode: iptables` and restart kube-proxy; before starting a
kube-proxy older than 1.29 (or another proxy) run `nft delete table ip kube-proxy` and
`nft delete table ip6 kube-proxy`. `kube-proxy --cleanup` removes iptables, ipvs and
nftables rules and exits.

References: KEP-3866 "Switching between kube-proxy modes", "Upgrade / Downgrade
Strategy", "Version Skew Strategy"; cmd/kube-proxy/app/server_linux.go (platformCleanup);
https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/
"""

from __future__ import annotations

from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_proxy import KEP_3866, NFTABLES_MODE_SINCE, running_version
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Severity

ROLLBACK_COMMANDS = ("nft delete table ip kube-proxy", "nft delete table ip6 kube-proxy")
PLAN = (
    "Rollback: set mode: iptables and restart kube-proxy (1.29+ deletes its nftables tables itself); before starting"
    f" a kube-proxy older than 1.29 or another proxy, run `{ROLLBACK_COMMANDS[0]}` and `{ROLLBACK_COMMANDS[1]}`."
    " Switching to nftables deletes the iptables rules of the old mode; each node can be switched and rolled back"
    " on its own, so switch one node first."
)


class RollbackPlan(Check):
    id = CheckID("KPA-027")
    title = "Rollback plan: what undoes the switch on this node"
    severity = Severity.WARNING
    remediation = PLAN
    docs = f"{KEP_3866}#switching-between-kube-proxy-modes"

    def run(self, ctx: CheckContext) -> Outcome:
        version, evidence = running_version(ctx)
        details: dict[str, Any] = {
            "commands": list(ROLLBACK_COMMANDS),
            "rollback_target": str(version) if version else None,
        }
        if version is None:
            return self.info(
                "the kube-proxy version to roll back to is unknown: if it is older than 1.29, delete the nftables"
                f" tables by hand ({'; '.join(ROLLBACK_COMMANDS)}) before starting it",
                evidence,
                **details,
            )
        if version < NFTABLES_MODE_SINCE:
            return self.warn(
                f"rolling back means returning to kube-proxy {version}, which predates nftables mode: it will neither"
                f" delete kube-proxy's nftables tables nor accept mode nftables; run {'; '.join(ROLLBACK_COMMANDS)}"
                " before starting it",
                evidence,
                remediation=PLAN,
                **details,
            )
        return self.info(
            f"rolling back to kube-proxy {version} in iptables mode deletes the nftables tables by itself; for an older"
            f" kube-proxy or another proxy run {'; '.join(ROLLBACK_COMMANDS)} first",
            evidence,
            **details,
        )
