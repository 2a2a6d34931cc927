"""KPA-014: both iptables backends (legacy and nft) hold Kubernetes rules.

What it checks: the rules in kube-proxy's and kubelet's `KUBE-*` chains (and jumps to
them) in the `iptables-legacy-save` and `iptables-nft-save` dumps (IPv4 and IPv6), the
`KUBE-SVC-*` chains in each, and which backend the node points to: `iptables --version`
("(nf_tables)" / "(legacy)"), else where kubelet's `KUBE-IPTABLES-HINT` chain lives.

Why it matters: switching to nftables mode makes kube-proxy clean up the old iptables
rules through the backend its image selects. Service rules in the *other* backend are
never removed and keep DNATing Service traffic to stale endpoints next to the new
nftables table. Components pick a backend by heuristics (rule counts, the hint chain);
wrong picks collide (cilium/cilium#20123, cloudnativelabs/kube-router#1069). It is a
blocker when `KUBE-SVC-*` chains sit in a backend the node does not point to.

Remediation: find which backend kube-proxy really uses (its image's iptables wrapper
log, or which dump changes between syncs) and remove kube-proxy's chains from the other
one (`kube-proxy --cleanup` run with that backend, or `iptables-<backend> -t nat -F
KUBE-SERVICES` and friends) before switching.

References: https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/, KEP-3866
Non-Goals (KUBE-IPTABLES-HINT stays), cilium/cilium#20123, cloudnativelabs/kube-router#1069
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._addons import KUBE_ROUTER_PREFIXES
from auditor.check.checks._netfilter import backend_of, host_iptables_backend
from auditor.check.context import CheckContext
from auditor.findings import CheckID, Evidence, Severity
from auditor.parse.iptables_save import IptablesDump

HINT = "KUBE-IPTABLES-HINT"
_NAMES = {"legacy": "iptables-legacy", "nft": "iptables-nft"}


@dataclass
class _Backend:
    name: str
    files: list[str] = field(default_factory=list)
    rules: int = 0
    services: int = 0
    hint: bool = False
    first_rule: str | None = None
    first_service: str | None = None


class BothIptablesBackendsHoldKubeRules(Check):
    id = CheckID("KPA-014")
    title = "Both iptables backends (legacy and nft) hold Kubernetes rules"
    severity = Severity.BLOCKER
    remediation = (
        "Remove kube-proxy's chains from the iptables backend it does not use (kube-proxy --cleanup with that"
        " backend's iptables, or flush and delete the KUBE-* chains with iptables-legacy / iptables-nft) before"
        " switching, so no stale Service rules survive next to the nftables table."
    )
    docs = "https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/"

    def run(self, ctx: CheckContext) -> Outcome:
        if not ctx.iptables:
            return self.not_applicable("no iptables dump in the snapshot: cannot compare the two backends")
        backends = {name: _Backend(name) for name in ("legacy", "nft")}
        for file in sorted(ctx.iptables):
            _count(backends[backend_of(file)], file, ctx.iptables[file])
        holding = [b for b in backends.values() if b.rules]
        unread = [n for n in ("legacy", "nft") if not backends[n].files and _failed(ctx, n)]
        evidence = [_evidence(b) for b in backends.values() if b.files]
        host = host_iptables_backend(ctx)
        evidence.append(Evidence("iptables --version backend", host, "host.json: iptables_version"))
        hinted = [b.name for b in backends.values() if b.hint]
        pointed = host or (hinted[0] if len(hinted) == 1 else None)
        details: dict[str, Any] = {
            "backends": {
                b.name: {"files": b.files, "kube_rules": b.rules, "kube_svc_chains": b.services, "hint": b.hint}
                for b in backends.values()
            },
            "host_backend": host,
            "hint_backends": hinted,
        }
        if len(holding) < 2:
            where = f"only {_NAMES[holding[0].name]}" if holding else "neither backend"
            if unread:
                return self.warn(
                    f"{where} holds Kubernetes rules, but the {', '.join(_NAMES[n] for n in unread)} dump could not be"
                    " read: rules there would be missed",
                    *evidence,
                    **details,
                )
            return self.passed(f"{where} holds Kubernetes rules", *evidence, **details)
        counts = ", ".join(f"{_NAMES[b.name]} {b.rules} rules / {b.services} KUBE-SVC chains" for b in holding)
        disagree = ""
        if host and hinted and host not in hinted:
            disagree = f"; iptables --version says {_NAMES[host]} but {HINT} is in {_NAMES[hinted[0]]}"
        stray = [b for b in holding if b.services and pointed is not None and b.name != pointed]
        if stray:
            names = ", ".join(_NAMES[b.name] for b in stray)
            return self.failed(
                f"both iptables backends hold Kubernetes rules ({counts}); KUBE-SVC chains sit in {names}, which the"
                f" node does not point to ({_NAMES[pointed or 'nft']}): nothing will clean them up on the switch"
                f"{disagree}",
                *evidence,
                **details,
            )
        unknown = "" if pointed else "; which backend the node uses is unknown (no iptables --version, no single hint)"
        return self.warn(
            f"both iptables backends hold Kubernetes rules ({counts}){disagree}{unknown}", *evidence, **details
        )


def _count(backend: _Backend, file: str, dump: IptablesDump) -> None:
    backend.files.append(file)
    for table in dump.tables.values():
        for name, chain in table.chains.items():
            if name == HINT and table.name == "mangle":
                backend.hint = True
            ours = _is_ours(name)
            if ours and name.startswith("KUBE-SVC-"):
                backend.services += 1
                backend.first_service = backend.first_service or f"{file}: {table.name} :{name}"
            for line, text in chain.lines:
                if ours or _is_ours(_target(text)):
                    backend.rules += 1
                    backend.first_rule = backend.first_rule or f"{file}:{line}"


def _is_ours(chain: str) -> bool:
    """A chain of kube-proxy or kubelet (kube-router's chains share the KUBE- prefix)."""
    return chain.startswith("KUBE-") and not chain.startswith(KUBE_ROUTER_PREFIXES)


def _target(rule: str) -> str:
    """The chain a rule jumps or goes to ("" when none)."""
    for option in (" -j ", " -g "):
        if option in rule:
            return rule.split(option, 1)[1].split(" ", 1)[0]
    return ""


def _failed(ctx: CheckContext, backend: str) -> bool:
    """The backend's dump was attempted and failed (an absent binary is not a failure)."""
    for name, record in ctx.sources.items():
        if name.endswith(f"-{backend}-save") and not record.get("ok") and not record.get("absent"):
            return True
    return False


def _evidence(b: _Backend) -> Evidence:
    value = f"{b.rules} Kubernetes rules, {b.services} KUBE-SVC chains{', ' + HINT if b.hint else ''}"
    return Evidence(f"{_NAMES[b.name]} dump", value, b.first_service or b.first_rule or ", ".join(b.files))
