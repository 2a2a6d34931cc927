"""kube-proxy settings as the checks read them: the config file when there is one, else flags.

kube-proxy ignores most flags when `--config` is given (cmd/kube-proxy/app/options.go), so a
flag counts only when no config file is in use. Every value comes back with the key or flag
it was read from, for evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.check.context import CheckContext
from auditor.findings import Evidence

CONFIG_SOURCE = "host.json: kube_proxy.config"
FLAGS_SOURCE = "host.json: kube_proxy.flags"


@dataclass(frozen=True)
class Setting:
    """One configured value: `name` is the config key ("iptables.masqueradeAll") or the flag."""

    name: str
    value: Any
    source: str

    @property
    def text(self) -> str:
        return value_text(self.value)

    def evidence(self, what: str | None = None) -> Evidence:
        label = self.name if what is None else f"{what} ({self.name})"
        return Evidence(label, self.text, self.source)


def value_text(value: Any) -> str:
    """A config value as YAML would show it (true/false, lists comma-separated)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def config_file_in_use(ctx: CheckContext) -> bool:
    """kube-proxy reads a config file (so it ignores most flags)."""
    return (
        ctx.kube_proxy_config is not None or ctx.flag("config") is not None or bool(ctx.kube_proxy.get("config_source"))
    )


def config_value(ctx: CheckContext, path: str) -> Setting | None:
    """`path` ("iptables.masqueradeBit") in the KubeProxyConfiguration; None when unset or null."""
    node: Any = ctx.kube_proxy_config
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return None if node is None else Setting(path, node, CONFIG_SOURCE)


def flag_value(ctx: CheckContext, name: str) -> Setting | None:
    """`--name` on kube-proxy's command line, whether or not kube-proxy honours it."""
    value = ctx.flag(name)
    return None if value is None else Setting(f"--{name}", value, FLAGS_SOURCE)


def setting(ctx: CheckContext, path: str, flag: str | None = None) -> Setting | None:
    """The value kube-proxy uses: the config key when a config file is in use, else the flag."""
    if config_file_in_use(ctx):
        return config_value(ctx, path)
    return flag_value(ctx, flag) if flag else None


def as_bool(value: Any) -> bool | None:
    """true/false from YAML or a flag's text; None when it is neither."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return {"true": True, "1": True, "false": False, "0": False}.get(text)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(str(value).strip(), 0)
    except ValueError:
        return None


def masquerade_mark(ctx: CheckContext) -> tuple[int, Evidence]:
    """iptables mode's masquerade mark (1 << masqueradeBit, default bit 14 = 0x4000) and where it came from."""
    configured = setting(ctx, "iptables.masqueradeBit", "iptables-masquerade-bit")
    bit = as_int(configured.value) if configured else None
    if configured is not None and bit is not None and 0 <= bit <= 31:
        return 1 << bit, configured.evidence(f"masquerade mark {1 << bit:#x}")
    if configured is not None:
        return 1 << 14, configured.evidence("masquerade bit (not in 0-31: kube-proxy would reject it; 14 assumed)")
    unset = "iptables.masqueradeBit / --iptables-masquerade-bit unset: kube-proxy's default"
    return 1 << 14, Evidence("masquerade mark (masqueradeBit 14)", "0x4000", unset)
