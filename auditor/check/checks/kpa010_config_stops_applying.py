"""KPA-010: kube-proxy settings that stop applying once `mode: nftables` is set.

What it checks: in the KubeProxyConfiguration, non-default `iptables.masqueradeAll`,
`iptables.masqueradeBit` (default 14), `iptables.localhostNodePorts` (default true),
`iptables.syncPeriod` (default 30s) and `iptables.minSyncPeriod` (default 1s) without the
same value under `nftables.*`; without a config file, the flags
`--iptables-masquerade-bit`, `--iptables-localhost-nodeports` and `--masquerade-all`.
Every item names the key or flag and its value.

Why it matters: converting a v1alpha1 config with `mode: nftables` takes masqueradeAll,
syncPeriod and minSyncPeriod from the `nftables` block and ignores the `iptables` block
(pkg/proxy/apis/config/v1alpha1/conversion.go); `nftables.masqueradeBit` is a field of its
own; `localhostNodePorts` applies only to iptables mode (types.go). A lost
`masqueradeAll: true` changes source NAT for all ClusterIP traffic, which some CNI plugins
need (a blocker); a changed mark bit matters to anything matching the mark; lost sync
periods change how often rules are rewritten. `--iptables-masquerade-bit` only sets the
iptables field; `--masquerade-all` applies to every mode in current releases
(cmd/kube-proxy/app/options.go).

Remediation: copy each value to its `nftables.*` key (`nftables.masqueradeAll`,
`nftables.masqueradeBit`, `nftables.syncPeriod`, `nftables.minSyncPeriod`) in the same
change that sets `mode: nftables`; drop `iptables.localhostNodePorts` (see KPA-009).

References: pkg/proxy/apis/config/v1alpha1/conversion.go, staging/src/k8s.io/kube-proxy/config/v1alpha1/types.go,
cmd/kube-proxy/app/options.go, k0sproject/k0s#3842
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.check.settings import (
    CONFIG_SOURCE,
    Setting,
    as_bool,
    as_int,
    config_file_in_use,
    config_value,
    flag_value,
    value_text,
)
from auditor.findings import CheckID, Evidence, Severity
from auditor.model import ProxyMode

#: iptables.* keys, their defaults, and the nftables.* key that replaces them (None: no equivalent)
_KEYS: tuple[tuple[str, Any, str | None], ...] = (
    ("masqueradeAll", False, "nftables.masqueradeAll"),
    ("masqueradeBit", 14, "nftables.masqueradeBit"),
    ("syncPeriod", "30s", "nftables.syncPeriod"),
    ("minSyncPeriod", "1s", "nftables.minSyncPeriod"),
    ("localhostNodePorts", True, None),
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class _Item:
    """One setting that stops applying; `lost` when behaviour changes, else it is only ignored."""

    setting: Setting
    replacement: str
    lost: bool
    note: str

    @property
    def evidence(self) -> Evidence:
        effect = "stops applying" if self.lost else "no change"
        return Evidence(f"{self.setting.name} ({effect}: {self.note})", self.setting.text, self.setting.source)

    @property
    def summary(self) -> str:
        return f"{self.setting.name}={self.setting.text}"


class ConfigStopsApplying(Check):
    id = CheckID("KPA-010")
    title = "kube-proxy settings under iptables.* stop applying in nftables mode"
    severity = Severity.WARNING
    remediation = (
        "Copy each iptables.* value to its nftables.* key (masqueradeAll, masqueradeBit, syncPeriod, minSyncPeriod) "
        "in the same change that sets mode: nftables; drop iptables.localhostNodePorts (see KPA-009)."
    )
    docs = "https://github.com/kubernetes/kubernetes/blob/master/pkg/proxy/apis/config/v1alpha1/conversion.go"

    def run(self, ctx: CheckContext) -> Outcome:
        if ctx.current_mode is ProxyMode.NFTABLES:
            return self.not_applicable("kube-proxy already runs in nftables mode")
        config = ctx.kube_proxy_config
        if config is None and not ctx.kube_proxy_running:
            return self.not_applicable("kube-proxy is not running here and no KubeProxyConfiguration was found")
        evidence: list[Evidence] = []
        if config is None and config_file_in_use(ctx):
            where = ctx.flag("config") or ctx.kube_proxy.get("config_source") or "?"
            error = ctx.kube_proxy.get("config_error") or "not collected"
            return self.warn(
                f"kube-proxy reads a config file ({where}) that the snapshot does not hold ({error}); "
                "its iptables.* settings could not be checked",
                Evidence("kube-proxy config file", str(where), "host.json: kube_proxy.config_source"),
            )
        items = self._config_items(ctx) if config is not None else self._flag_items(ctx)
        if config is not None:
            evidence.append(Evidence("config file", str(ctx.kube_proxy.get("config_source") or "?"), CONFIG_SOURCE))
            evidence += self._ignored_flags(ctx)
        evidence += [item.evidence for item in items]
        lost = [i for i in items if i.lost]
        rows = [self._row(i) for i in items]
        if any(i.setting.name == "iptables.masqueradeAll" for i in lost):
            return self.failed(
                "masqueradeAll: true stops applying in nftables mode, so ClusterIP traffic is no longer masqueraded: "
                + _list(lost),
                *evidence,
                remediation=_remediation(lost),
                settings=rows,
            )
        if lost:
            return self.warn(
                f"{len(lost)} setting(s) stop applying in nftables mode: {_list(lost)}",
                *evidence,
                remediation=_remediation(lost),
                settings=rows,
            )
        if items:
            return self.info(
                f"ignored in nftables mode, with no change in behaviour: {_list(items)}", *evidence, settings=rows
            )
        source = "the KubeProxyConfiguration" if config is not None else "kube-proxy's flags"
        return self.passed(
            f"{source} set no iptables-only option that nftables mode would drop", *evidence, settings=rows
        )

    def _config_items(self, ctx: CheckContext) -> list[_Item]:
        items: list[_Item] = []
        for key, default, replacement in _KEYS:
            found = config_value(ctx, f"iptables.{key}")
            if found is None or _same(found.value, default):
                continue
            if replacement is None:
                stays_off = as_bool(found.value) is False
                note = (
                    "nftables mode never serves localhost NodePorts, so false changes nothing"
                    if stays_off
                    else "nftables mode never serves localhost NodePorts (KPA-009)"
                )
                items.append(_Item(found, "none", not stays_off, note))
                continue
            target = config_value(ctx, replacement)
            if target is not None and _same(target.value, found.value):
                continue
            now = target.text if target is not None else f"unset, so {value_text(default)}"
            items.append(_Item(found, replacement, True, f"{replacement} is {now}"))
        return items

    def _flag_items(self, ctx: CheckContext) -> list[_Item]:
        items: list[_Item] = []
        bit = flag_value(ctx, "iptables-masquerade-bit")
        if bit is not None and as_int(bit.value) != 14:
            items.append(
                _Item(bit, "nftables.masqueradeBit", True, "sets only the iptables field; nftables mode uses bit 14")
            )
        localhost = flag_value(ctx, "iptables-localhost-nodeports")
        if localhost is not None:
            off = as_bool(localhost.value) is False
            note = (
                "false changes nothing: nftables mode never serves them"
                if off
                else "nftables mode never serves them (KPA-009)"
            )
            items.append(_Item(localhost, "none", not off, note))
        masquerade_all = flag_value(ctx, "masquerade-all")
        if masquerade_all is not None and as_bool(masquerade_all.value):
            items.append(
                _Item(
                    masquerade_all,
                    "--masquerade-all",
                    False,
                    "applies to every mode in current releases; confirm with the planned version's --help",
                )
            )
        return items

    def _ignored_flags(self, ctx: CheckContext) -> list[Evidence]:
        """iptables flags next to a config file: kube-proxy ignores them today already."""
        found = [
            flag_value(ctx, name)
            for name in ("iptables-masquerade-bit", "iptables-localhost-nodeports", "masquerade-all")
        ]
        return [Evidence(f"{f.name} (ignored today: a config file is in use)", f.text, f.source) for f in found if f]

    @staticmethod
    def _row(item: _Item) -> dict[str, object]:
        return {
            "key": item.setting.name,
            "value": item.setting.text,
            "source": item.setting.source,
            "replacement": item.replacement,
            "lost": item.lost,
            "note": item.note,
        }


def _same(value: Any, other: Any) -> bool:
    """Equal as config values: booleans, integers, or Go durations ("1m" == "60s")."""
    if isinstance(other, bool):
        return as_bool(value) is other
    if isinstance(other, int):
        return as_int(value) == other
    a, b = _seconds(value), _seconds(other)
    return a is not None and a == b


def _seconds(value: Any) -> float | None:
    """A Go duration ("1m30s", "500ms", "0") in seconds; None when unreadable."""
    text = str(value).strip()
    if text in ("0", ""):
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def _list(items: list[_Item]) -> str:
    return ", ".join(f"{i.summary} ({i.note})" for i in items)


def _remediation(lost: list[_Item]) -> str:
    steps = [
        f"set {i.replacement}: {i.setting.text}" if i.replacement.startswith("nftables.") else f"drop {i.setting.name}"
        for i in lost
    ]
    flags = any(i.setting.name.startswith("--") and i.replacement.startswith("nftables.") for i in lost)
    config = " in a KubeProxyConfiguration file (there are no nftables.* flags)" if flags else ""
    localhost = any("localhost" in i.setting.name.lower() for i in lost)
    tail = "; KPA-009 covers the loss of localhost NodePorts" if localhost else ""
    return f"Before switching to mode: nftables{config}, " + "; ".join(steps) + tail + "."
