"""Everything a check may look at, read once from a snapshot.

Checks read the snapshot contract (host.json, meta.json, the dumps) through this one
object, never files or commands: that keeps them offline, unprivileged and testable
with a snapshot a test writes by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditor.collect.probe import ProbeResult
from auditor.model import ProxyMode, ServiceModel
from auditor.parse.iptables_save import IptablesDump
from auditor.versions import Version, parse_version

#: the snapshot's iptables dumps, by file name
IPTABLES_FILES = (
    "iptables-legacy-save.txt",
    "iptables-nft-save.txt",
    "ip6tables-legacy-save.txt",
    "ip6tables-nft-save.txt",
)


@dataclass
class CheckContext:
    """A node as the checks see it. Build it with `auditor.check.load.context_from_snapshot`."""

    node: str
    host: Mapping[str, Any]
    #: meta.json "sources": name -> {"command", "ok", "error", "seconds"}
    sources: Mapping[str, Mapping[str, Any]]
    #: parsed iptables dumps by file name (only those the node had)
    iptables: Mapping[str, IptablesDump]
    #: the parsed `nft -j list ruleset`, or None when it could not be read
    nft: Any | None
    #: the model of each mode that holds kube-proxy state (absent: no such state)
    models: Mapping[ProxyMode, ServiceModel]
    #: the mode kube-proxy runs in, when known
    current_mode: ProxyMode | None
    probe: ProbeResult | None = None
    #: the kube-proxy version the node will run after the switch (--target-version)
    target_version: Version | None = None
    #: the file/command each fact came from, for evidence ("host.json", "meta.json", ...)
    origin: str = "snapshot"
    #: reasons the snapshot is incomplete (a required source failed)
    incomplete: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)

    # -- host ----------------------------------------------------------------------------

    @property
    def kernel_release(self) -> str | None:
        value = self.host.get("kernel_release")
        return str(value) if value else None

    @property
    def kernel_version(self) -> Version | None:
        return parse_version(self.kernel_release)

    @property
    def nft_version(self) -> Version | None:
        """The host's nft binary (None: not installed or not readable)."""
        return parse_version(self.host.get("nft_version"))

    @property
    def iptables_version(self) -> Version | None:
        return parse_version(self.host.get("iptables_version"))

    def sysctl(self, name: str) -> str | None:
        value = (self.host.get("sysctls") or {}).get(name)
        return None if value is None else str(value).strip()

    @property
    def modules_loaded(self) -> set[str]:
        return set((self.host.get("modules") or {}).get("loaded") or ())

    @property
    def modules_builtin(self) -> set[str]:
        return set((self.host.get("modules") or {}).get("builtin") or ())

    @property
    def addresses(self) -> list[Mapping[str, Any]]:
        return list(self.host.get("addresses") or ())

    # -- kube-proxy ----------------------------------------------------------------------

    @property
    def kube_proxy(self) -> Mapping[str, Any]:
        return self.host.get("kube_proxy") or {}

    @property
    def kube_proxy_running(self) -> bool:
        return bool(self.kube_proxy.get("running"))

    @property
    def kube_proxy_config(self) -> Mapping[str, Any] | None:
        config = self.kube_proxy.get("config")
        return config if isinstance(config, Mapping) else None

    @property
    def kube_proxy_flags(self) -> list[str]:
        return [str(f) for f in self.kube_proxy.get("flags") or ()]

    def flag(self, name: str) -> str | None:
        """The value of `--name=value` or `--name value` on kube-proxy's command line."""
        flags = self.kube_proxy_flags
        for i, item in enumerate(flags):
            if item == f"--{name}" and i + 1 < len(flags) and not flags[i + 1].startswith("--"):
                return flags[i + 1]
            if item == f"--{name}":
                return "true"
            if item.startswith(f"--{name}="):
                return item.split("=", 1)[1]
        return None

    @property
    def kube_proxy_environment(self) -> Mapping[str, str]:
        return self.kube_proxy.get("environment") or {}

    @property
    def kube_proxy_version(self) -> Version | None:
        return parse_version(self.kube_proxy.get("version"))

    @property
    def planned_version(self) -> Version | None:
        """The kube-proxy version that will run nftables mode: --target-version, else today's."""
        return self.target_version or self.kube_proxy_version

    def metric(self, name: str) -> float | None:
        """A kube-proxy metric summed over its label sets, when the metrics were reachable."""
        metrics = self.kube_proxy.get("metrics")
        if not isinstance(metrics, Mapping):
            return None
        total, seen = 0.0, False
        for key, value in metrics.items():
            if key == name or key.startswith(name + "{"):
                try:
                    total += float(value)
                except (TypeError, ValueError):
                    continue
                seen = True
        return total if seen else None

    # -- sources -------------------------------------------------------------------------

    def source_ok(self, name: str) -> bool:
        return bool((self.sources.get(name) or {}).get("ok"))

    def source_error(self, name: str) -> str | None:
        record = self.sources.get(name)
        if record is None:
            return f"{name}: not collected"
        error = record.get("error")
        return None if record.get("ok") else str(error or "failed")
