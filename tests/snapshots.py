"""Write snapshots by hand, the way `kp-audit collect` would, for offline check tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auditor.collect.probe import ProbeResult
from auditor.model import IPFamily
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from tests.checkctx import HEALTHY_HOST, healthy_probe

EMPTY_NFT = json.dumps({"nftables": [{"metainfo": {"version": "1.0.9", "release_name": "Old Doc Yak #3", "json_schema_version": 1}}]})
_KUBE_PROXY_DEFAULTS = {"metrics_address": "127.0.0.1:10249", "config_source": None, "metrics": None}


def ready_host() -> dict[str, Any]:
    """A node every check is happy with (kube-proxy 1.34, mode pinned, one address)."""
    host = copy.deepcopy(HEALTHY_HOST)
    host["nft_version"] = "1.0.9"
    host["iptables_version"] = "1.8.10"
    host["iptables_backend"] = "nf_tables"
    host["addresses"] = [
        {"interface": "lo", "address": "127.0.0.1", "prefix": 8},
        {"interface": "eth0", "address": "192.168.0.2", "prefix": 24},
    ]
    host["kube_proxy"]["config"]["conntrack"] = {"tcpBeLiberal": True}
    return host


def ready_iptables() -> str:
    node = generate_node(4, 2, variety=False, localhost_node_ports=False, conntrack_tcp_be_liberal=True)
    return render_iptables(node, IPFamily.IPV4)


def write_snapshot_dir(
    path: Path,
    *,
    host: Mapping[str, Any] | None = None,
    iptables: Mapping[str, str] | None = None,
    nft_json: str | None = EMPTY_NFT,
    probe: ProbeResult | None = None,
    failed: Mapping[str, str] | None = None,
    hostname: str = "node-1",
) -> Path:
    """A snapshot directory; `failed` marks sources as failed with that error (files left out)."""
    path.mkdir(parents=True)
    host_data = copy.deepcopy(dict(host if host is not None else ready_host()))
    for key, value in _KUBE_PROXY_DEFAULTS.items():
        host_data["kube_proxy"].setdefault(key, value)
    failed = dict(failed or {})
    sources: dict[str, Any] = {}
    dumps = dict(iptables if iptables is not None else {"iptables-nft-save.txt": ready_iptables()})
    for name in ("iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save"):
        file = f"{name}.txt"
        ok = name not in failed
        sources[name] = _source(name, ok, failed.get(name), file if ok else None, required="iptables")
        if ok:
            (path / file).write_text(dumps.get(file, ""))
    nft_ok = "nftables" not in failed and nft_json is not None
    sources["nftables"] = _source("nftables", nft_ok, failed.get("nftables", "nft: not found"), "nft-ruleset.json" if nft_ok else None, required="nftables")
    if nft_ok:
        (path / "nft-ruleset.json").write_text(nft_json or "")
    result = probe if probe is not None else healthy_probe()
    sources["probe"] = _source("probe", result.ran, result.reason, "probe.json")
    (path / "probe.json").write_text(json.dumps(result.to_json()))
    meta = {"schema": "kp-audit.snapshot/v1", "tool_version": "test", "created": "2026-11-26T00:00:00Z", "hostname": hostname, "sources": sources}
    (path / "meta.json").write_text(json.dumps(meta))
    (path / "host.json").write_text(json.dumps(host_data))
    return path


def _source(name: str, ok: bool, error: str | None, file: str | None, required: str | None = None) -> dict[str, Any]:
    return {"command": [name], "ok": ok, "error": None if ok else error, "seconds": 0.01, "file": file, "required": required}
