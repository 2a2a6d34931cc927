"""KPA-009: NodePorts are reached on 127.0.0.1, which nftables mode does not serve.

What it checks: whether iptables mode serves NodePorts on localhost today (the nat
KUBE-SERVICES -> KUBE-NODEPORTS jump without `! -d 127.0.0.0/8`, the per-NodePort
`-d 127.0.0.0/8 ... --nfacct-name localhost_nps_accepted_pkts` rules,
`iptables.localhostNodePorts` / `--iptables-localhost-nodeports`, default true, IPv4 only),
whether the kernel lets it work (`net.ipv4.conf.all.route_localnet=1`), and whether anyone
uses it: kube-proxy's `kubeproxy_iptables_localhost_nodeports_accepted_packets_total`
counter, when the metrics were reachable. Above 0 means a client connected to
127.0.0.1:<nodePort> since kube-proxy started.

Why it matters: nftables mode never serves NodePorts on loopback (the iptables trick needs
route_localnet, a CVE-2020-8558 hazard, and cannot work for IPv6). Clients such as a
container runtime pulling from a `localhost:<nodePort>` registry (the Zarf air-gap pattern)
stop working. Kubernetes 1.37 adds an opt-in userspace proxy for TCP localhost NodePorts
(KEP-6032, alpha feature gate `KubeProxyNFTablesLocalhostNodePorts`, off by default).

Remediation: move clients from 127.0.0.1:<nodePort> to the node's primary IP, a ClusterIP
or a hostPort; or, with kube-proxy 1.37+, enable the feature gate
`KubeProxyNFTablesLocalhostNodePorts` and set `nodePortAddresses: [primary, localhost]`
(TCP only, alpha).

References: https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables,
KEP-3866 "Localhost NodePorts", KEP-6032, kubernetes PR #125015, k0sproject/k0s#5760, zarf-dev/zarf#3684
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.check.nodeports import (
    kube_proxy_dumps,
    no_iptables_state,
    node_ports,
    nodeports_jump_evidence,
    summarize,
)
from auditor.check.settings import as_bool, setting
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import IPFamily, ProxyMode
from auditor.versions import Version

METRIC = "kubeproxy_iptables_localhost_nodeports_accepted_packets_total"
SYSCTL = "net.ipv4.conf.all.route_localnet"
GATE = "KubeProxyNFTablesLocalhostNodePorts"
USERSPACE_PROXY = Version(1, 37)
NFACCT = "localhost_nps_accepted_pkts"


class LocalhostNodePortsInUse(Check):
    id = CheckID("KPA-009")
    title = "NodePorts are served on 127.0.0.1, which nftables mode does not do"
    severity = Severity.BLOCKER
    remediation = (
        "Point clients of 127.0.0.1:<nodePort> at the node's primary IP, a ClusterIP or a hostPort before switching; "
        f"with kube-proxy 1.37+ the alpha feature gate {GATE} plus nodePortAddresses: [primary, localhost] "
        "serves TCP localhost NodePorts again."
    )
    docs = "https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables"

    def run(self, ctx: CheckContext) -> Outcome:
        model = ctx.models.get(ProxyMode.IPTABLES)
        if model is None:
            missing, why = no_iptables_state(ctx)
            return self.warn(why) if missing else self.not_applicable(why)
        evidence = nodeports_jump_evidence(ctx)
        configured = setting(ctx, "iptables.localhostNodePorts", "iptables-localhost-nodeports")
        if configured is not None:
            evidence.append(configured.evidence())
        if not model.localhost_node_ports:
            why = "the NodePort rules exclude 127.0.0.0/8"
            if configured is not None and as_bool(configured.value) is False:
                why = f"{configured.name} is false"
            return self.passed(f"NodePorts are not served on localhost today ({why})", *evidence)
        ports = [np for np in node_ports(model) if np.family is IPFamily.IPV4 and np.kind == "node-port"]
        rows = [_row(np.service, np.port, np.protocol) for np in ports]
        if not ports:
            return self.info("localhost NodePorts are enabled, but there is no IPv4 NodePort to lose", *evidence)
        evidence += self._counting_rules(ctx)
        route_localnet = ctx.sysctl(SYSCTL)
        evidence.append(Evidence(SYSCTL, route_localnet, "host.json: sysctls"))
        accepted = ctx.metric(METRIC)
        metric_source = f"host.json: kube_proxy.metrics ({METRIC})"
        evidence.append(Evidence("localhost NodePort packets accepted", _count(accepted), metric_source))
        later = self._userspace_proxy_note(ctx, sorted({np.protocol for np in ports} - {"tcp"}))
        names = summarize(f"127.0.0.1:{np.port} ({np.service})" for np in ports)
        if route_localnet == "0":
            if accepted:
                return self.warn(
                    f"{_count(accepted)} packets hit localhost NodePorts, but {SYSCTL}=0 keeps them from working "
                    f"today; nftables mode will not serve {names} either{later}",
                    *evidence,
                    nodeports=rows,
                )
            return self.passed(
                f"the localhost NodePort rules exist, but {SYSCTL}=0, so 127.0.0.1:<nodePort> cannot work today",
                *evidence,
            )
        if accepted:
            return self.failed(
                f"clients use localhost NodePorts ({_count(accepted)} packets accepted since kube-proxy started); "
                f"nftables mode will not serve {names}{later}",
                *evidence,
                nodeports=rows,
                accepted_packets=accepted,
            )
        seen = (
            "no packet was counted since kube-proxy started"
            if accepted is not None
            else (f"use could not be measured: {METRIC} is not in the snapshot (metrics unreachable)")
        )
        return self.warn(
            f"iptables mode serves {len(ports)} NodePort(s) on 127.0.0.1 ({names}) and nftables mode will not; "
            f"{seen}{later}",
            *evidence,
            nodeports=rows,
            accepted_packets=accepted,
        )

    def _counting_rules(self, ctx: CheckContext) -> list[Evidence]:
        """The per-NodePort localhost rules (first few, then how many)."""
        found: list[Evidence] = []
        for name in kube_proxy_dumps(ctx):
            chain = ctx.iptables[name].chain("nat", "KUBE-NODEPORTS")
            for line, text in chain.lines if chain else ():
                if "127.0.0.0/8" in text and NFACCT in text:
                    found.append(Evidence("localhost NodePort rule", text, f"{name}:{line}"))
        if len(found) > 3:
            rest = Evidence("more localhost NodePort rules", str(len(found) - 3), found[3].source.split(":")[0])
            found = [*found[:3], rest]
        return found

    def _userspace_proxy_note(self, ctx: CheckContext, other_protocols: list[str]) -> str:
        planned = ctx.planned_version
        if planned is None or planned < USERSPACE_PROXY:
            return ""
        gates = (ctx.kube_proxy_config or {}).get("featureGates") or {}
        state = "enabled" if gates.get(GATE) else "off by default"
        not_covered = f"; {'/'.join(other_protocols).upper()} NodePorts stay unreachable" if other_protocols else ""
        return (
            f"; kube-proxy {planned} can serve TCP localhost NodePorts with the alpha feature gate {GATE} "
            f"({state}) and nodePortAddresses: [primary, localhost] (KEP-6032){not_covered}"
        )


def _row(service: str, port: int, protocol: str) -> dict[str, object]:
    return {
        "service": service,
        "port": port,
        "protocol": protocol,
        "address": "127.0.0.1",
        "today": True,
        "after": False,
    }


def _count(value: float | None) -> str | None:
    return None if value is None else f"{value:.0f}"
