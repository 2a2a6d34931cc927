"""What a snapshot records about the node besides its rules: the `host.json` half of the contract.

Typed frozen values, and their JSON both ways (`to_json` / `from_json`). Reading checks
every field's type and names the file and field on a mismatch, so a hand-edited or
truncated host.json is one `InputError`, not a `KeyError` deep in a check. Fields may be
added, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from auditor.errors import InputError

_T = TypeVar("_T")

#: sysctl values: an int when the file holds one integer, else the text; None when absent
SysctlValue = int | str | None


@dataclass(frozen=True, slots=True)
class Address:
    """One address of a local interface (`ip -j addr`)."""

    interface: str
    address: str
    prefix: int
    #: "inet" or "inet6"
    family: str = ""
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Modules:
    """Kernel modules: None where the kernel does not say (no /proc/modules, no modules.builtin)."""

    loaded: tuple[str, ...] | None = None
    builtin: tuple[str, ...] | None = None

    def state(self, name: str) -> bool | None:
        """True when `name` is loaded or built in, False when surely neither, None when unknown.

        A kernel without /proc/modules has no loadable modules: what it has is built in,
        and nothing can be loaded on demand.
        """
        name = name.replace("-", "_")
        if self.loaded is not None and name in self.loaded:
            return True
        if self.builtin is not None and name in self.builtin:
            return True
        if self.loaded is not None and self.builtin is not None:
            return False
        return None


@dataclass(frozen=True)
class KubeProxyFacts:
    """The kube-proxy serving this node, as far as the node shows it."""

    #: a kube-proxy process was found, or its metrics server answered
    running: bool = False
    pid: int | None = None
    #: argv[0] (and the subcommand, for hyperkube-style binaries)
    command: tuple[str, ...] = ()
    #: the mode in effect: "iptables", "nftables", "ipvs" ...; unset config means "iptables"
    mode: str | None = None
    #: where `mode` came from: "/proxyMode", "/configz", "config", "--proxy-mode", "default"
    mode_source: str | None = None
    #: the configured mode as written ("" when config/flags leave it unset; None when unknown)
    mode_setting: str | None = None
    version: str | None = None
    version_source: str | None = None
    flags: tuple[str, ...] = ()
    #: the KubeProxyConfiguration (YAML config file, or --kube-proxy-config)
    config: dict[str, Any] | None = None
    #: "file:PATH" (the running process's --config), "--kube-proxy-config PATH", or None
    config_source: str | None = None
    config_error: str | None = None
    #: the effective configuration from the metrics server's /configz, as served
    configz: dict[str, Any] | None = None
    #: KUBE_* and an allow-list of variables from the process environment (secrets redacted)
    environment: dict[str, str] = field(default_factory=dict)
    #: kubeproxy_* and kubernetes_build_info samples: "name{labels}" -> value
    metrics: dict[str, float | str] | None = None
    metrics_address: str | None = None
    metrics_error: str | None = None


@dataclass(frozen=True)
class HostFacts:
    """Kernel, userspace versions, sysctls, modules, addresses and kube-proxy of the node."""

    kernel_release: str | None = None
    os_release: dict[str, str] | None = None
    #: "1.0.6" from `nft --version`; the whole line is in `nft_version_text`
    nft_version: str | None = None
    nft_version_text: str | None = None
    #: "1.8.9" from `iptables --version`; `iptables_backend` is "nf_tables" or "legacy"
    iptables_version: str | None = None
    iptables_backend: str | None = None
    iptables_version_text: str | None = None
    sysctls: dict[str, SysctlValue] = field(default_factory=dict)
    modules: Modules = field(default_factory=Modules)
    addresses: tuple[Address, ...] | None = None
    kube_proxy: KubeProxyFacts = field(default_factory=KubeProxyFacts)


# --- JSON -------------------------------------------------------------------------------------


def host_to_json(host: HostFacts) -> dict[str, Any]:
    """host.json as plain data."""
    return {
        "kernel_release": host.kernel_release,
        "os_release": host.os_release,
        "nft_version": host.nft_version,
        "nft_version_text": host.nft_version_text,
        "iptables_version": host.iptables_version,
        "iptables_backend": host.iptables_backend,
        "iptables_version_text": host.iptables_version_text,
        "sysctls": dict(host.sysctls),
        "modules": {
            "loaded": None if host.modules.loaded is None else list(host.modules.loaded),
            "builtin": None if host.modules.builtin is None else list(host.modules.builtin),
        },
        "addresses": None
        if host.addresses is None
        else [
            {"interface": a.interface, "address": a.address, "prefix": a.prefix, "family": a.family, "scope": a.scope}
            for a in host.addresses
        ],
        "kube_proxy": kube_proxy_to_json(host.kube_proxy),
    }


def kube_proxy_to_json(kp: KubeProxyFacts) -> dict[str, Any]:
    return {
        "running": kp.running,
        "pid": kp.pid,
        "command": list(kp.command),
        "mode": kp.mode,
        "mode_source": kp.mode_source,
        "mode_setting": kp.mode_setting,
        "version": kp.version,
        "version_source": kp.version_source,
        "flags": list(kp.flags),
        "config": kp.config,
        "config_source": kp.config_source,
        "config_error": kp.config_error,
        "configz": kp.configz,
        "environment": dict(kp.environment),
        "metrics": kp.metrics,
        "metrics_address": kp.metrics_address,
        "metrics_error": kp.metrics_error,
    }


class FieldReader:
    """Typed access to one JSON object of a file; a wrong or missing field is an `InputError`."""

    def __init__(self, source: str, data: Any, where: str = "") -> None:
        if not isinstance(data, dict):
            raise InputError(source, f"{where or 'top level'}: expected an object, got {_typename(data)}")
        self.source = source
        self.data: dict[str, Any] = data
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type[_T] | tuple[type, ...], *, required: bool = True, default: Any = None) -> Any:
        """The value of `key`, which must be of `kind` (None allowed unless `kind` excludes it)."""
        if key not in self.data:
            if required:
                raise InputError(self.source, f"missing field {self._name(key)!r}")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int subclass: accept it only where bool is asked for
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
            raise InputError(self.source, f"field {self._name(key)!r}: expected {names}, got {_typename(value)}")
        return value

    def str_list(self, key: str, *, required: bool = True) -> tuple[str, ...] | None:
        value = self.get(key, (list, type(None)), required=required)
        if value is None:
            return None
        if not all(isinstance(v, str) for v in value):
            raise InputError(self.source, f"field {self._name(key)!r}: expected a list of strings")
        return tuple(value)

    def child(self, key: str, *, required: bool = True) -> FieldReader | None:
        value = self.get(key, (dict, type(None)), required=required)
        return None if value is None else FieldReader(self.source, value, self._name(key))


_JSON_NAMES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _typename(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


_OPT_STR = (str, type(None))
_OPT_OBJ = (dict, type(None))


def host_from_json(data: Any, source: str) -> HostFacts:
    """host.json back to `HostFacts`; raises `InputError` naming `source` and the field."""
    r = FieldReader(source, data)
    sysctls = r.get("sysctls", dict)
    for name, value in sysctls.items():
        if not isinstance(value, (int, str, type(None))) or isinstance(value, bool):
            raise InputError(source, f"field 'sysctls.{name}': expected number, string or null, got {_typename(value)}")
    modules = r.child("modules")
    assert modules is not None
    os_release = r.get("os_release", _OPT_OBJ)
    if os_release is not None and not all(isinstance(v, str) for v in os_release.values()):
        raise InputError(source, "field 'os_release': expected string values")
    kube_proxy = r.child("kube_proxy")
    assert kube_proxy is not None
    return HostFacts(
        kernel_release=r.get("kernel_release", _OPT_STR),
        os_release=os_release,
        nft_version=r.get("nft_version", _OPT_STR),
        nft_version_text=r.get("nft_version_text", _OPT_STR, required=False),
        iptables_version=r.get("iptables_version", _OPT_STR),
        iptables_backend=r.get("iptables_backend", _OPT_STR, required=False),
        iptables_version_text=r.get("iptables_version_text", _OPT_STR, required=False),
        sysctls=dict(sysctls),
        modules=Modules(loaded=modules.str_list("loaded"), builtin=modules.str_list("builtin")),
        addresses=_addresses_from_json(r),
        kube_proxy=kube_proxy_from_json(kube_proxy),
    )


def _addresses_from_json(r: FieldReader) -> tuple[Address, ...] | None:
    items = r.get("addresses", (list, type(None)))
    if items is None:
        return None
    out = []
    for i, item in enumerate(items):
        a = FieldReader(r.source, item, f"addresses[{i}]")
        out.append(
            Address(
                interface=a.get("interface", str),
                address=a.get("address", str),
                prefix=a.get("prefix", int),
                family=a.get("family", str, required=False, default=""),
                scope=a.get("scope", _OPT_STR, required=False),
            )
        )
    return tuple(out)


def kube_proxy_from_json(r: FieldReader) -> KubeProxyFacts:
    metrics = r.get("metrics", _OPT_OBJ)
    if metrics is not None:
        for name, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise InputError(r.source, f"field 'kube_proxy.metrics.{name}': expected a number")
    environment = r.get("environment", dict)
    if not all(isinstance(v, str) for v in environment.values()):
        raise InputError(r.source, "field 'kube_proxy.environment': expected string values")
    return KubeProxyFacts(
        running=r.get("running", bool),
        pid=r.get("pid", (int, type(None)), required=False),
        command=r.str_list("command", required=False) or (),
        mode=r.get("mode", _OPT_STR),
        mode_source=r.get("mode_source", _OPT_STR, required=False),
        mode_setting=r.get("mode_setting", _OPT_STR, required=False),
        version=r.get("version", _OPT_STR),
        version_source=r.get("version_source", _OPT_STR, required=False),
        flags=r.str_list("flags") or (),
        config=r.get("config", _OPT_OBJ),
        config_source=r.get("config_source", _OPT_STR),
        config_error=r.get("config_error", _OPT_STR, required=False),
        configz=r.get("configz", _OPT_OBJ, required=False),
        environment=dict(environment),
        metrics=None if metrics is None else dict(metrics),
        metrics_address=r.get("metrics_address", _OPT_STR),
        metrics_error=r.get("metrics_error", _OPT_STR, required=False),
    )
