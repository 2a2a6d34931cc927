"""Build a CheckContext from in-memory pieces, the way a snapshot would provide them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from auditor.check.context import CheckContext
from auditor.collect.probe import FEATURES, FeatureResult, ProbeResult
from auditor.model import ProxyMode
from auditor.normalize.node import node_models
from auditor.parse.iptables_save import parse_iptables_save
from auditor.versions import Version

#: a healthy, current node: every check should pass on it unless a test changes something
HEALTHY_HOST: dict[str, Any] = {
    "kernel_release": "6.8.0-45-generic",
    "os_release": {"ID": "ubuntu", "VERSION_ID": "24.04", "PRETTY_NAME": "Ubuntu 24.04 LTS"},
    "nft_version": "nftables v1.0.9 (Old Doc Yak #3)",
    "iptables_version": "iptables v1.8.10 (nf_tables)",
    "sysctls": {
        "net.ipv4.conf.all.route_localnet": "0",
        "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.netfilter.nf_conntrack_max": "262144",
    },
    "modules": {
        "loaded": ["nf_tables", "nft_ct", "nft_fib_ipv4", "nft_fib_ipv6", "nft_numgen", "nft_masq", "nft_chain_nat", "nf_nat", "nf_conntrack"],
        "builtin": [],
    },
    "addresses": [
        {"interface": "lo", "address": "127.0.0.1", "prefix": 8},
        {"interface": "eth0", "address": "192.168.0.2", "prefix": 24},
    ],
    "kube_proxy": {
        "running": True,
        "mode": "iptables",
        "version": "v1.34.2",
        "flags": ["--config=/var/lib/kube-proxy/config.conf", "--hostname-override=node-1"],
        "config": {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "clusterCIDR": "10.0.0.0/8",
        },
        "config_source": "/var/lib/kube-proxy/config.conf",
        "environment": {},
        "metrics": None,
    },
}


def healthy_probe() -> ProbeResult:
    return ProbeResult(True, None, "/usr/sbin/nft", tuple(FeatureResult(f.name, True, f.provides) for f in FEATURES))


def make_context(
    host: Mapping[str, Any] | None = None,
    *,
    iptables: Mapping[str, str] | None = None,
    nft_json: str | None = None,
    probe: ProbeResult | None = None,
    current_mode: ProxyMode | None = ProxyMode.IPTABLES,
    target_version: str | None = None,
    sources: Mapping[str, Mapping[str, Any]] | None = None,
    incomplete: tuple[str, ...] = (),
    node: str = "node-1",
) -> CheckContext:
    """A context from a host.json-like dict, iptables-save texts by snapshot file name,
    and `nft -j` text; models are normalized the way a snapshot's would be."""
    dumps = {
        name: parse_iptables_save(text, source=name, ipv6=name.startswith("ip6"), allow_empty=True)
        for name, text in (iptables or {}).items()
    }
    ruleset = None
    if nft_json is not None:
        from auditor.parse.nft_json import parse_nft_json

        ruleset = parse_nft_json(nft_json, "nft-ruleset.json")
    version = None
    if target_version:
        from auditor.versions import parse_version

        version = parse_version(target_version)
        assert isinstance(version, Version)
    default_sources = {
        "iptables-nft-save": {"ok": True, "error": None},
        "nft": {"ok": nft_json is not None, "error": None if nft_json is not None else "not collected"},
    }
    return CheckContext(
        node=node,
        host=copy.deepcopy(dict(host if host is not None else HEALTHY_HOST)),
        sources=dict(sources if sources is not None else default_sources),
        iptables=dumps,
        nft=ruleset,
        models=node_models(dumps, ruleset),
        current_mode=current_mode,
        probe=probe if probe is not None else healthy_probe(),
        target_version=version,
        incomplete=incomplete,
    )


def with_host(**changes: Any) -> dict[str, Any]:
    """HEALTHY_HOST with top-level keys replaced; nested dicts via dotted keys: "sysctls.x"."""
    host = copy.deepcopy(HEALTHY_HOST)
    for key, value in changes.items():
        path = key.split("__")
        target = host
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return host
