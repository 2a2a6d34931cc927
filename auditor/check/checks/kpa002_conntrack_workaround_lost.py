"""KPA-002: a kernel older than 6.1 loses iptables mode's INVALID-drop workaround.

What it checks: kernel below 6.1 with `net.netfilter.nf_conntrack_tcp_be_liberal` = 0 and
no `conntrack.tcpBeLiberal` / `--conntrack-tcp-be-liberal` in kube-proxy's configuration.
Evidence includes iptables mode's `KUBE-FORWARD ... --ctstate INVALID -j DROP` rule and,
when the metrics were reachable, how many packets it dropped
(`kubeproxy_iptables_ct_state_invalid_dropped_packets_total`).

Why it matters: kernels before 6.1 can reset long-lived TCP connections to Service IPs
("connection reset by peer"). iptables mode hides this by dropping conntrack-INVALID
packets; nftables mode installs no such rule (kubernetes#122663). Setting be_liberal
makes the kernel tolerant instead.

Remediation: set `conntrack.tcpBeLiberal: true` in the KubeProxyConfiguration (or
`--conntrack-tcp-be-liberal`), or `sysctl net.netfilter.nf_conntrack_tcp_be_liberal=1`,
or upgrade the kernel to 6.1+.

References: https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables,
kubernetes PRs #122663, #120412; issues #74839, #117924
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.versions import Version

FIXED_KERNEL = Version(6, 1)
SYSCTL = "net.netfilter.nf_conntrack_tcp_be_liberal"
METRIC = "kubeproxy_iptables_ct_state_invalid_dropped_packets_total"


class ConntrackWorkaroundLost(Check):
    id = CheckID("KPA-002")
    title = "Kernel before 6.1 without nf_conntrack_tcp_be_liberal loses the INVALID-drop workaround"
    severity = Severity.WARNING
    remediation = (
        "Set conntrack.tcpBeLiberal: true in the KubeProxyConfiguration (or --conntrack-tcp-be-liberal), "
        "or sysctl net.netfilter.nf_conntrack_tcp_be_liberal=1, or upgrade the kernel to 6.1+."
    )
    docs = "https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables"

    def run(self, ctx: CheckContext) -> Outcome:
        version = ctx.kernel_version
        kernel = Evidence("kernel release", ctx.kernel_release, "host.json: kernel_release")
        if version is None:
            return self.not_applicable("the kernel release could not be read", kernel)
        if version >= FIXED_KERNEL:
            return self.passed(f"kernel {ctx.kernel_release} has the conntrack fix (6.1+)", kernel)
        liberal = ctx.sysctl(SYSCTL)
        sysctl = Evidence(SYSCTL, liberal, "host.json: sysctls")
        config = ctx.kube_proxy_config or {}
        configured = (config.get("conntrack") or {}).get("tcpBeLiberal") is True or ctx.flag("conntrack-tcp-be-liberal") == "true"
        if liberal == "1" or configured:
            how = "kube-proxy's configuration sets tcpBeLiberal" if configured else "the sysctl is set"
            return self.passed(f"kernel {ctx.kernel_release} is older than 6.1, but {how}", kernel, sysctl)
        evidence = [kernel, sysctl]
        for name, dump in ctx.iptables.items():
            chain = dump.chain("filter", "KUBE-FORWARD")
            for line, text in chain.lines if chain else ():
                if "INVALID" in text and text.endswith("-j DROP"):
                    evidence.append(Evidence("iptables-mode workaround rule", text, f"{name}:{line}"))
        dropped = ctx.metric(METRIC)
        if dropped is not None:
            evidence.append(Evidence("INVALID packets dropped so far", f"{dropped:.0f}", f"metrics: {METRIC}"))
        busy = f"; iptables mode has dropped {dropped:.0f} INVALID packets so far" if dropped else ""
        return self.warn(
            f"kernel {ctx.kernel_release} is older than 6.1 and nf_conntrack_tcp_be_liberal is {liberal or 'unset'}:"
            f" nftables mode has no INVALID-drop rule, so long-lived TCP connections may be reset{busy}",
            *evidence,
        )
