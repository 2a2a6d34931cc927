"""KPA-011: a host firewall drops Service traffic that kube-proxy's iptables rules let through today.

What it checks: base chains on the input and forward hooks that drop by default: filter
INPUT/FORWARD with policy DROP or a final unconditional DROP/REJECT in either iptables
backend (firewalld's iptables backend and ufw show up here), and filter base chains of
other nftables tables (`inet firewalld`, a hand-written `inet filter`) with `policy drop`
or a final drop/reject. Each is walked, without kube-proxy's own rules, for the traffic
kube-proxy's iptables rules accept today: healthCheckNodePorts on input (the filter
KUBE-NODEPORTS ACCEPTs) and masqueraded NodePort / load-balancer / external-IP traffic on
forward (KUBE-FORWARD's mark ACCEPT; after DNAT the packet is addressed to the endpoints).
Every Service port a default-drop path would drop is listed in `details["blocked_ports"]`.
An allow rule counts only when each of its conditions surely matches; when one cannot be
judged (an interface, a source range, a mark, an ipset) the result is "unclear", a warning.

Why it matters: iptables mode inserts ACCEPT rules ahead of a local iptables firewall
(health checks: kubernetes#97225; forwarding: #39823, #59656). In nftables an `accept`
only ends the current table, so kube-proxy's nftables mode cannot bypass a firewall and
does not try: no health-check ACCEPT, no KUBE-FORWARD. A firewall that relied on those
rules starts dropping load-balancer health checks and forwarded Service traffic. Firewalls
kube-proxy never bypassed (the other iptables backend, other nftables tables) block the
same traffic today already; they are reported as warnings.

Remediation: make the firewall allow Kubernetes traffic itself: the NodePort range
(30000-32767 by default) and every healthCheckNodePort on input, forwarded traffic to the
pod network on forward (`ct status dnat accept`, or accept to/from the pod CIDR).

References: https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables
("NodePort interaction with firewalls"), KEP-3866 ("Forcing traffic on HealthCheckNodePorts to be accepted"),
kubernetes#97225, PR #97824, #39823, #59656
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from auditor.check.base import Check, Outcome
from auditor.check.checks._host_firewall import Cond, Hook, Packet, Result, Step, evaluate, iptables_step, nft_step
from auditor.check.checks._kube_chains import IPTABLES_TABLES, is_own_jump, owned_chain
from auditor.check.context import CheckContext
from auditor.check.nodeports import kube_proxy_dumps, local_addresses, no_iptables_state, parse_ip, summarize
from auditor.errors import InputError
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import FrontendKind, IPFamily, Masquerade, ProxyMode, ServiceModel
from auditor.model import Result as ServiceResult
from auditor.parse.iptables_save import IptablesDump

_EXTERNAL = (FrontendKind.NODE_PORT, FrontendKind.LOAD_BALANCER, FrontendKind.EXTERNAL_IP)
_NFT_FAMILIES = {"ip": (IPFamily.IPV4,), "ip6": (IPFamily.IPV6,), "inet": (IPFamily.IPV4, IPFamily.IPV6)}
#: the iptables-nft dump that shows an nft table of this family
_IPTABLES_NFT_DUMP = {"ip": "iptables-nft-save.txt", "ip6": "ip6tables-nft-save.txt"}
#: the kube-proxy jump that accepts this hook's traffic today
_BYPASS = {"input": "KUBE-NODEPORTS", "forward": "KUBE-FORWARD"}
#: products that are firewalls even when no default-drop path is found (Docker only labels its chains)
_FIREWALL_PRODUCTS = ("firewalld", "ufw")


@dataclass(frozen=True)
class _Traffic:
    """Service traffic kube-proxy's iptables rules accept today, as one packet."""

    service: str
    kind: str
    protocol: str
    port: int
    address: str | None
    packet: Packet

    @property
    def label(self) -> str:
        where = f" on {self.address}" if self.address else ""
        return f"{self.kind} {self.protocol}/{self.port}{where} ({self.service})"


class HostFirewallBlocksServices(Check):
    id = CheckID("KPA-011")
    title = "A host firewall drops Service traffic that kube-proxy's iptables ACCEPT rules let through"
    severity = Severity.BLOCKER
    remediation = (
        "Make the host firewall allow Kubernetes traffic itself before switching: the NodePort range "
        "(30000-32767) and every healthCheckNodePort on input, and forwarded traffic to the pod network on "
        "forward (ct status dnat accept, or accept to/from the pod CIDR)."
    )
    docs = "https://kubernetes.io/docs/reference/networking/virtual-ips/#migrating-from-iptables-mode-to-nftables"

    def run(self, ctx: CheckContext) -> Outcome:
        model = ctx.models.get(ProxyMode.IPTABLES)
        if model is None:
            missing, why = no_iptables_state(ctx)
            return self.warn(why) if missing else self.not_applicable(why)
        traffic = list(_traffic(ctx, model))
        if not traffic:
            return self.not_applicable(
                "kube-proxy's iptables rules accept no health-check node port and forward no masqueraded "
                "NodePort/load-balancer traffic here, so no firewall depends on them"
            )
        hooks, problems = _hooks(ctx)
        evidence = [Evidence("could not read", text, where) for where, text in problems]
        found: list[_Found] = []
        firewalls: dict[str, Hook] = {}
        for hook in hooks:
            for item in traffic:
                if item.packet.hook != hook.hook or item.packet.family not in hook.families:
                    continue
                result = evaluate(hook, item.packet)
                if result.outcome != "passes":
                    found.append(_Found(item, hook, result))
            if hook.product in _FIREWALL_PRODUCTS or any(f.hook is hook for f in found):
                firewalls[hook.label] = hook
        evidence += _firewall_evidence(firewalls.values(), found)
        blocked = [f.row for f in found if f.status in ("blocked", "unclear")]
        regressions = [f for f in found if f.status == "blocked" and f.hook.bypassed_today]
        remediation = _remediation(model, traffic)
        if regressions:
            walls = ", ".join(sorted({f.hook.label for f in regressions}))
            return self.failed(
                f"the host firewall ({walls}) drops {summarize(f.traffic.label for f in regressions)} with no rule "
                "allowing them; today kube-proxy's iptables ACCEPT rules let this traffic through, nftables mode "
                "adds none",
                *evidence,
                remediation=remediation,
                blocked_ports=blocked,
            )
        if found or firewalls:
            return self.warn(_warning(found, firewalls), *evidence, remediation=remediation, blocked_ports=blocked)
        seen = f"{len(hooks)} input/forward base chain(s)"
        if problems:
            return self.warn(
                f"no default-drop firewall found, but part of the rules could not be read ({seen})", *evidence
            )
        if ctx.nft is None:
            return self.warn(
                f"no default-drop firewall in the iptables dumps ({seen}), but the nft ruleset is not in the snapshot "
                f"({ctx.source_error('nft') or 'not collected'}), so nftables firewalls (firewalld) could not "
                "be checked",
                *evidence,
            )
        return self.passed(f"no host firewall drops Kubernetes traffic by default ({seen} examined)", *evidence)


@dataclass(frozen=True)
class _Found:
    """What one firewall hook does with one kind of Service traffic."""

    traffic: _Traffic
    hook: Hook
    result: Result

    @property
    def status(self) -> str:
        return {"dropped": "blocked", "unclear": "unclear", "accepted": "allowed"}[self.result.outcome]

    @property
    def drop(self) -> tuple[str, str]:
        """Where and what drops the traffic: the final rule, or the chain's policy."""
        step = self.result.drop
        return (step.where, step.text) if step else (self.hook.where, f"policy {self.hook.policy}")

    @property
    def row(self) -> dict[str, object]:
        t, allow = self.traffic, self.result.deciding
        return {
            "service": t.service,
            "kind": t.kind,
            "protocol": t.protocol,
            "port": t.port,
            "address": t.address,
            "hook": self.hook.hook,
            "firewall": self.hook.label,
            "result": self.status,
            "dropped_by": self.drop[0],
            "drop_rule": self.drop[1],
            "allowed_by": allow.where if allow else None,
            "allow_rule": allow.text if allow else None,
            "bypassed_today": self.hook.bypassed_today,
        }


def _traffic(ctx: CheckContext, model: ServiceModel) -> Iterator[_Traffic]:
    """Health checks on input; masqueraded external traffic on forward, addressed to its endpoints."""
    addresses = local_addresses(ctx) or []
    for hc in model.health_check_node_ports:
        local = tuple(a.ip for a in addresses if a.family is hc.family and not a.ip.is_loopback)
        packet = Packet("input", hc.family, "tcp", frozenset({hc.port}), local, dnat=False)
        yield _Traffic(hc.service or "?", "health-check node port", "tcp", hc.port, None, packet)
    for svc in model.services:
        for f in svc.frontends:
            if f.kind not in _EXTERNAL or f.result is not ServiceResult.DNAT or f.masquerade is not Masquerade.ALL:
                continue
            ips = tuple(ip for e in f.endpoints if (ip := parse_ip(e.address)) is not None)
            packet = Packet(
                "forward", svc.family, svc.protocol.value, frozenset(e.port for e in f.endpoints), ips, True
            )
            yield _Traffic(svc.name, f.kind.value, svc.protocol.value, f.port, f.address, packet)


def _hooks(ctx: CheckContext) -> tuple[list[Hook], list[tuple[str, str]]]:
    """Every input/forward base chain outside kube-proxy, and what could not be read."""
    hooks: list[Hook] = []
    problems: list[tuple[str, str]] = []
    for name, dump in sorted(ctx.iptables.items()):
        hooks += _iptables_hooks(name, dump, name in kube_proxy_dumps(ctx), problems)
    if ctx.nft is not None:
        hooks += _nft_hooks(ctx)
    return hooks, problems


def _iptables_hooks(
    name: str, dump: IptablesDump, kube_proxy_here: bool, problems: list[tuple[str, str]]
) -> list[Hook]:
    table = dump.tables.get("filter")
    if table is None:
        return []
    chains = {c: ch for c, ch in table.chains.items() if not owned_chain(c)}
    steps: dict[str, list[Step]] = {}
    for chain_name, user_chain in chains.items():
        try:
            rules = [r for r in user_chain.rules if not is_own_jump(r) and not owned_chain(r.target or "")]
        except InputError as exc:
            problems.append((name, str(exc)))
            # unreadable: it may accept anything, so nothing reached through it counts as surely dropped
            steps[chain_name] = [Step((Cond("other", None),), "accept", None, name, f"unreadable chain {chain_name}")]
            continue
        steps[chain_name] = [iptables_step(rule, chains, f"{name}:{rule.line}") for rule in rules]
    product = _iptables_product(table.chains)
    family = frozenset({IPFamily.IPV6 if dump.ipv6 else IPFamily.IPV4})
    hooks = []
    for chain_name, hook in (("INPUT", "input"), ("FORWARD", "forward")):
        chain = table.chains.get(chain_name)
        if chain is None:
            continue
        bypassed = kube_proxy_here and any(text.endswith(f"-j {_BYPASS[hook]}") for _, text in chain.lines)
        label = f"{name} filter {chain_name}" + (f" ({product})" if product else "")
        hooks.append(
            Hook(
                label,
                hook,
                family,
                (chain.policy or "ACCEPT").lower(),
                chain_name,
                steps,
                f"{name} (:{chain_name} {chain.policy})",
                bypassed,
                product,
            )
        )
    return hooks


def _iptables_product(chains: Mapping[str, object]) -> str | None:
    names = set(chains)
    if names & {"INPUT_ZONES", "FORWARD_IN_ZONES", "INPUT_direct"}:
        return "firewalld"
    if any(n.startswith(("ufw-", "ufw6-")) for n in names):
        return "ufw"
    if "DOCKER-USER" in names or "DOCKER" in names:
        return "Docker"
    return None


def _nft_hooks(ctx: CheckContext) -> list[Hook]:
    ruleset = ctx.nft
    source = getattr(ruleset, "source", "nft ruleset")
    hooks: list[Hook] = []
    for table in getattr(ruleset, "tables", ()):
        family = table.family.value
        if family not in _NFT_FAMILIES or (table.name == "kube-proxy" and family in ("ip", "ip6")):
            continue
        dump = ctx.iptables.get(_IPTABLES_NFT_DUMP.get(family, ""))
        if table.name in IPTABLES_TABLES and dump is not None and table.name in dump.tables:
            continue  # iptables-nft's own table: read from iptables-save above
        steps = {
            name: [nft_step(r, table, f"{source}: {table.label} {name} handle {r.handle}") for r in chain.rules]
            for name, chain in table.chains.items()
        }
        product = "firewalld" if table.name == "firewalld" else None
        for chain in table.chains.values():
            if chain.type != "filter" or chain.hook not in ("input", "forward"):
                continue
            label = f"nft {table.label} {chain.name}"
            where = f"{source}: {table.label} {chain.name} (policy {chain.policy or 'accept'})"
            families = frozenset(_NFT_FAMILIES[family])
            hooks.append(
                Hook(label, chain.hook, families, chain.policy or "accept", chain.name, steps, where, False, product)
            )
    return hooks


def _firewall_evidence(hooks: Iterable[Hook], found: list[_Found]) -> list[Evidence]:
    evidence: list[Evidence] = []
    for hook in hooks:
        today = "" if hook.bypassed_today else " (kube-proxy does not bypass it today)"
        drops = sorted({f.drop for f in found if f.hook is hook}) or [(hook.where, f"policy {hook.policy}")]
        evidence += [Evidence(f"{hook.label}: default drop{today}", text, where) for where, text in drops[:3]]
    allows = sorted({(s.where, s.text) for f in found if (s := f.result.deciding) is not None})
    evidence += [Evidence("allow rule", text, where) for where, text in allows[:5]]
    return evidence


def _warning(found: list[_Found], firewalls: dict[str, Hook]) -> str:
    walls = ", ".join(sorted(firewalls))
    blocked = [f for f in found if f.status == "blocked"]
    unclear = [f for f in found if f.status == "unclear"]
    parts = []
    if blocked:
        parts.append(
            f"drops {summarize(f.traffic.label for f in blocked)} today already (kube-proxy's ACCEPT rules never "
            "reach this firewall) and will keep dropping them"
        )
    if unclear:
        parts.append(
            f"may drop {summarize(f.traffic.label for f in unclear)}: an allow rule exists, but kp-audit cannot "
            "tell whether it covers them (it matches on an interface, source, mark or set the snapshot cannot judge)"
        )
    if not parts:
        allowed = [f for f in found if f.status == "allowed"]
        what = (
            f"appears to allow the {len(allowed)} Service port(s) kube-proxy accepts today"
            if allowed
            else ("has no default-drop path for Kubernetes traffic")
        )
        parts.append(what + "; review it before switching, since nftables mode will not bypass it")
    return f"host firewall {walls} " + "; ".join(parts)


def _remediation(model: ServiceModel, traffic: list[_Traffic]) -> str:
    health = sorted({t.port for t in traffic if t.packet.hook == "input"})
    pods = ", ".join(d for d in model.local_traffic if not d.startswith("iif")) or "the pod CIDR"
    ports = f" and the healthCheckNodePorts {', '.join(map(str, health))}" if health else ""
    return (
        f"Before switching, allow in the host firewall itself: the NodePort range 30000-32767{ports} on input "
        f"(iptables: -p tcp -m multiport --dports 30000:32767 -j ACCEPT; nft: tcp dport 30000-32767 accept), "
        f"and forwarded Service traffic on forward (nft: ct status dnat accept; or accept to/from {pods}). "
        "firewalld: add the ports to the zone; ufw: ufw allow 30000:32767/tcp and ufw route allow to the pod CIDR."
    )
