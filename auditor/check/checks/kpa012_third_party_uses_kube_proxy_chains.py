"""KPA-012: rules outside kube-proxy use kube-proxy's iptables chains or its masquerade mark.

What it checks: every table of every iptables dump (both backends, mangle and raw
included), skipping kube-proxy's and kubelet's own chains and jump rules, for
- rules that jump or go to a chain the switch deletes: KUBE-MARK-MASQ, KUBE-MARK-DROP,
  KUBE-SERVICES, KUBE-NODEPORTS, KUBE-POSTROUTING, KUBE-FORWARD, KUBE-EXTERNAL-SERVICES,
  KUBE-PROXY-FIREWALL, KUBE-SVC-*, KUBE-SVL-*, KUBE-EXT-*, KUBE-FW-*, KUBE-SEP-* (blocker);
- rules that match or set the masquerade mark (`-m mark --mark`, `-m connmark`, MARK /
  CONNMARK targets) with 1 << masqueradeBit (0x4000 by default) (warning);
- nat PREROUTING/OUTPUT rules before kube-proxy's KUBE-SERVICES jump that DNAT, REDIRECT or
  jump elsewhere: they see Service traffic first today (warning);
and, in nftables, tables other than kube-proxy's (and iptables-nft's, read above) with nat
base chains on prerouting/output at priority dstnat (-100) or earlier that DNAT or
redirect, rules that match or set the masquerade mark, and rules that mention kube-proxy
(warning). kubelet's KUBE-FIREWALL, KUBE-KUBELET-CANARY and KUBE-IPTABLES-HINT stay and are
not findings. Each rule is listed with file:line (nft: table, chain, handle) in
`details["rules"]`.

Why it matters: switching deletes kube-proxy's iptables chains (cmd/kube-proxy/app/server_linux.go,
platformCleanup). A rule that jumps to one stops loading, and a chain that is still
referenced cannot be deleted, so the cleanup is left half done. The chains were never an
API ("Kubernetes's IPTables Chains Are Not API"), and in nftables mode the mark is "not
part of kube-proxy's public API" (pkg/proxy/nftables/README.md; it changed again in
PR #135800). DNAT rules that run before kube-proxy's today share kube-proxy's nftables
priority (dstnat) afterwards, so their order is no longer guaranteed.

Remediation: update or remove the component that wrote the rules before switching: give
it its own chains (or its own nftables table with base chains at priority dstnat for DNAT,
srcnat for SNAT, filter for drops), do its own masquerading instead of jumping to
KUBE-MARK-MASQ, and stop matching kube-proxy's mark.

References: https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/, KEP-3178,
kubernetes/kubernetes pkg/proxy/nftables/README.md, cmd/kube-proxy/app/server_linux.go
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.checks._kube_chains import IPTABLES_TABLES, is_own_jump, kube_proxy_chain, owned_chain
from auditor.check.context import CheckContext
from auditor.check.nodeports import no_iptables_state, summarize
from auditor.check.settings import masquerade_mark
from auditor.errors import InputError
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import ProxyMode
from auditor.parse.iptables_save import IptablesDump, Rule
from auditor.parse.nft_json import NftRule, NftTable, rule_text

#: nat hook priority of dstnat; base chains at or before it see Service traffic first
DSTNAT = -100
_FULL_MASK = 0xFFFFFFFF
_IPTABLES_NFT_DUMP = {"ip": "iptables-nft-save.txt", "ip6": "ip6tables-nft-save.txt"}
SHOWN = 15
_EARLY = "it sees Service traffic before (or alongside) kube-proxy's nat chains"


@dataclass(frozen=True)
class _Hit:
    source: str
    line: int | None
    table: str
    chain: str
    rule: str
    reason: str
    blocker: bool

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    @property
    def row(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "table": self.table,
            "chain": self.chain,
            "rule": self.rule,
            "reason": self.reason,
            "severity": "blocker" if self.blocker else "warning",
        }


class ThirdPartyUsesKubeProxyChains(Check):
    id = CheckID("KPA-012")
    title = "Rules outside kube-proxy use its iptables chains or its masquerade mark"
    severity = Severity.BLOCKER
    remediation = (
        "Before switching, update the component that wrote these rules: its own chains (or its own nftables table "
        "at priority dstnat/srcnat/filter) instead of kube-proxy's, its own masquerading instead of KUBE-MARK-MASQ, "
        "and no matching on kube-proxy's mark."
    )
    docs = "https://kubernetes.io/blog/2022/09/07/iptables-chains-not-api/"

    def run(self, ctx: CheckContext) -> Outcome:
        if not ctx.iptables and ctx.nft is None:
            missing, why = no_iptables_state(ctx)
            if missing:
                return self.warn(f"{why}, and the nft ruleset is missing too: nothing could be checked")
            return self.not_applicable("the snapshot has neither iptables dumps nor the nft ruleset")
        mark, mark_evidence = masquerade_mark(ctx)
        hits: list[_Hit] = []
        problems: list[Evidence] = []
        for name, dump in sorted(ctx.iptables.items()):
            hits += _iptables_hits(name, dump, mark, problems)
        if ctx.nft is not None:
            hits += _nft_hits(ctx, mark)
        seen = _seen(ctx)
        evidence = [mark_evidence, *problems, *(Evidence(h.reason, h.rule, h.where) for h in hits[:SHOWN])]
        if len(hits) > SHOWN:
            evidence.append(Evidence("more rules", str(len(hits) - SHOWN), "details: rules"))
        rows = [h.row for h in hits]
        blockers = [h for h in hits if h.blocker]
        if blockers:
            return self.failed(
                f"{len(blockers)} rule(s) outside kube-proxy use chains the switch deletes: "
                f"{summarize(f'{h.where} ({h.table} {h.chain}) -> {_target(h)}' for h in blockers)}",
                *evidence,
                rules=rows,
            )
        if hits:
            return self.warn(
                f"{len(hits)} rule(s) outside kube-proxy depend on its mark or its place in the nat hooks: "
                f"{summarize((f'{h.where} ({h.reason})' for h in hits), 3)}",
                *evidence,
                rules=rows,
            )
        if not ctx.iptables and ctx.current_mode is not ProxyMode.NFTABLES:
            return self.warn(
                f"no nftables table uses kube-proxy's mark or runs DNAT before it ({seen}), but the snapshot has no "
                "iptables dump, so the rules that could use kube-proxy's chains were not checked",
                *evidence,
                rules=rows,
            )
        gap = (
            ""
            if ctx.nft is not None
            else "; the nft ruleset is not in the snapshot, so nftables tables were not checked"
        )
        if not ctx.iptables:
            gap = "; kube-proxy runs in nftables mode and the snapshot has no iptables dump"
        return self.passed(
            f"no rule outside kube-proxy uses its chains or its mark ({seen}){gap}", *evidence, rules=rows
        )


def _seen(ctx: CheckContext) -> str:
    dumps = ", ".join(sorted(ctx.iptables)) or "no iptables dump"
    tables = len(getattr(ctx.nft, "tables", ())) if ctx.nft is not None else 0
    return f"{dumps}; {tables} nft table(s)"


def _target(hit: _Hit) -> str:
    words = hit.rule.split()
    for flag in ("-j", "-g", "--jump", "--goto"):
        if flag in words and words.index(flag) + 1 < len(words):
            return words[words.index(flag) + 1]
    return "?"


# --- iptables ---------------------------------------------------------------------------------


def _iptables_hits(name: str, dump: IptablesDump, mark: int, problems: list[Evidence]) -> list[_Hit]:
    hits: list[_Hit] = []
    for table in dump.tables.values():
        for chain in table.chains.values():
            if owned_chain(chain.name) or not chain.lines:
                continue
            try:
                rules = chain.rules
            except InputError as exc:
                problems.append(Evidence(f"could not read chain {table.name} {chain.name}", str(exc), name))
                continue
            for rule in rules:
                if is_own_jump(rule):
                    continue
                reason, blocker = _iptables_reason(rule, mark)
                if reason:
                    hits.append(_Hit(name, rule.line, table.name, chain.name, rule.text, reason, blocker))
    hits += _before_kube_services(name, dump)
    return sorted(hits, key=lambda h: h.line or 0)


def _iptables_reason(rule: Rule, mark: int) -> tuple[str | None, bool]:
    target = rule.target or ""
    if kube_proxy_chain(target) and target != "KUBE-PROXY-CANARY":
        how = "goes to" if rule.goto else "jumps to"
        return f"{how} {target}, which the switch to nftables mode deletes", True
    for opt in (*rule.options, *rule.target_options):
        if opt.name in ("--mark", "--set-xmark", "--set-mark", "--or-mark", "--xor-mark", "--and-mark") and _touches(
            opt.name, opt.value, mark
        ):
            return f"uses kube-proxy's masquerade mark {mark:#x} ({opt.module or target} {opt.name} {opt.value})", False
    return None, False


def _touches(option: str, value: str, bit: int) -> bool:
    """Whether a mark match or MARK/CONNMARK target tests or changes `bit`."""
    text, _, mask_text = value.partition("/")
    try:
        number = int(text, 0)
        mask = int(mask_text, 0) if mask_text else None
    except ValueError:
        return False
    if option == "--and-mark":
        return number != 0 and not number & bit
    if number & bit:
        return True
    return mask is not None and mask != _FULL_MASK and bool(mask & bit)


def _before_kube_services(name: str, dump: IptablesDump) -> list[_Hit]:
    """nat PREROUTING/OUTPUT rules that run before kube-proxy's KUBE-SERVICES jump and DNAT or jump away."""
    hits: list[_Hit] = []
    for builtin in ("PREROUTING", "OUTPUT"):
        chain = dump.chain("nat", builtin)
        if chain is None:
            continue
        try:
            rules = chain.rules
        except InputError:
            continue  # reported by the scan of the whole table
        own = [i for i, r in enumerate(rules) if is_own_jump(r) and r.target == "KUBE-SERVICES"]
        if not own:
            continue
        for rule in rules[: own[0]]:
            target = rule.target or ""
            if (
                is_own_jump(rule)
                or owned_chain(target)
                or target in ("", "ACCEPT", "RETURN", "MARK", "LOG", "CONNMARK")
            ):
                continue
            what = "DNATs" if target in ("DNAT", "REDIRECT") else f"jumps to {target}"
            hits.append(
                _Hit(
                    name,
                    rule.line,
                    "nat",
                    builtin,
                    rule.text,
                    f"{what} before kube-proxy's KUBE-SERVICES jump; in nftables mode its order against kube-proxy's "
                    "nat chains (both at priority dstnat) is not guaranteed",
                    False,
                )
            )
    return hits


# --- nftables ---------------------------------------------------------------------------------


def _nft_hits(ctx: CheckContext, mark: int) -> list[_Hit]:
    source = str(getattr(ctx.nft, "source", "nft ruleset"))
    hits: list[_Hit] = []
    for table in getattr(ctx.nft, "tables", ()):
        family = table.family.value
        if table.name == "kube-proxy" and family in ("ip", "ip6"):
            continue
        dump = ctx.iptables.get(_IPTABLES_NFT_DUMP.get(family, ""))
        if table.name in IPTABLES_TABLES and dump is not None and table.name in dump.tables:
            continue  # iptables-nft's table: scanned as iptables rules above
        for chain, rule, reason in _nft_table_hits(table, mark):
            where = f"{source}: {table.label} {chain} handle {rule.handle}"
            hits.append(_Hit(where, None, table.label, chain, rule_text(rule), reason, False))
    return hits


def _nft_table_hits(table: NftTable, mark: int) -> Iterator[tuple[str, NftRule, str]]:
    dnat_chains = _early_dnat_chains(table)
    for name, chain in table.chains.items():
        for rule in chain.rules:
            if name in dnat_chains and any(isinstance(e, dict) and ("dnat" in e or "redirect" in e) for e in rule.expr):
                hook = dnat_chains[name]
                yield name, rule, f"DNATs from a nat {hook} base chain at priority dstnat or earlier: {_EARLY}"
            elif _nft_uses_mark(rule, mark):
                yield name, rule, f"uses kube-proxy's masquerade mark {mark:#x}"
            elif "kube-proxy" in rule_text(rule):
                yield name, rule, "mentions kube-proxy (nftables rules cannot reach another table; review it)"


def _early_dnat_chains(table: NftTable) -> dict[str, str]:
    """Chains reachable from nat prerouting/output base chains at priority <= dstnat: name -> hook."""
    reach: dict[str, str] = {}
    todo = [
        (c.name, c.hook)
        for c in table.chains.values()
        if c.type == "nat" and c.hook in ("prerouting", "output") and c.prio is not None and c.prio <= DSTNAT
    ]
    while todo:
        name, hook = todo.pop()
        if name in reach or name not in table.chains or hook is None:
            continue
        reach[name] = hook
        for rule in table.chains[name].rules:
            todo += [(target, hook) for target in _targets(rule.expr)]
    return reach


def _targets(expr: Any) -> Iterator[str]:
    """Chains a rule jumps or goes to, verdict maps included."""
    if isinstance(expr, dict):
        for key, body in expr.items():
            if key in ("jump", "goto") and isinstance(body, dict) and isinstance(body.get("target"), str):
                yield body["target"]
            else:
                yield from _targets(body)
    elif isinstance(expr, list):
        for item in expr:
            yield from _targets(item)


def _nft_uses_mark(rule: NftRule, mark: int) -> bool:
    for expr in rule.expr:
        if not isinstance(expr, dict) or len(expr) != 1:
            continue
        key, body = next(iter(expr.items()))
        if key in ("match", "mangle") and _mentions_mark(body) and any(n & mark for n in _ints(body)):
            return True
    return False


def _mentions_mark(node: Any) -> bool:
    if isinstance(node, dict):
        if node.get("key") == "mark" and len(node) <= 2:
            return True
        return any(_mentions_mark(v) for v in node.values())
    if isinstance(node, list):
        return any(_mentions_mark(v) for v in node)
    return False


def _ints(node: Any) -> Iterator[int]:
    if isinstance(node, bool):
        return
    if isinstance(node, int):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _ints(v)
    elif isinstance(node, list):
        for v in node:
            yield from _ints(v)
