"""nftables mode at scale: 1,000 and 10,000 services x 4 endpoints in `nft -j list ruleset` form.

The JSON is generated directly, object for object in the shape nft 1.0.6 prints for the
generator's services (`render_nft` loaded into a kernel and listed): loading 10,000
services into a kernel takes minutes, generating them takes seconds. As root, a small
node is also loaded into a throwaway namespace first and both forms must give the same
model, so the generated shape cannot drift from the real one.

Each size is timed in a fresh process (best of 3), so neither heap nor garbage-collector
state carries over from the other size. Prints `json.load` of the file (the reference),
read_nft_json, normalize_nftables, the file -> model path (read + normalize, timed as one)
over the reference (target under 3), the same over a `json.load` with the garbage collector
paused as our reader does (the stricter figure), and the peak RSS of a fresh process doing
read + normalize (target under 1 GiB); then the growth of the file -> model path from 1,000
to 10,000 services (linear: about 10, target under 12).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.model import IPFamily, ProxyMode  # noqa: E402
from auditor.naming import nft_endpoint_chain_base, nft_service_chain_base  # noqa: E402
from auditor.normalize.nftables import normalize_nftables  # noqa: E402
from auditor.parse.nft_json import parse_nft_json, read_nft_json  # noqa: E402
from auditor.synth.expected import expected_model  # noqa: E402
from auditor.synth.nftables import render_nft  # noqa: E402
from auditor.synth.spec import NodeSpec, generate_node  # noqa: E402
from bench.common import best_of, can_use_kernel, in_namespace, namespace  # noqa: E402

T = "kube-proxy"
ADDR_KEY = {
    "concat": [
        {"payload": {"protocol": "ip", "field": "daddr"}},
        {"meta": {"key": "l4proto"}},
        {"payload": {"protocol": "th", "field": "dport"}},
    ]
}
PORT_KEY = {"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}
NOT_LOOPBACK = {
    "match": {
        "op": "!=",
        "left": {"payload": {"protocol": "ip", "field": "daddr"}},
        "right": {"prefix": {"addr": "127.0.0.0", "len": 8}},
    }
}
CT_NEW = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}
MARK = {"meta": {"key": "mark"}}


class _Json:
    """Objects in nft's listing order: table, sets and maps, chains, rules; handles counted up."""

    def __init__(self) -> None:
        self.handle = 0
        self.sets: list[dict[str, Any]] = []
        self.chains: list[dict[str, Any]] = []
        self.rules: list[dict[str, Any]] = []

    def next_handle(self) -> int:
        self.handle += 1
        return self.handle

    def chain(self, name: str, **base: Any) -> None:
        body = {"family": "ip", "table": T, "name": name, "handle": self.next_handle()}
        if base:
            body.update(base, policy="accept")
        self.chains.append({"chain": body})

    def rule(self, chain: str, *expr: Any, comment: str | None = None) -> None:
        body: dict[str, Any] = {"family": "ip", "table": T, "chain": chain, "handle": self.next_handle()}
        if comment:
            body["comment"] = comment
        body["expr"] = list(expr)
        self.rules.append({"rule": body})

    def document(self) -> dict[str, Any]:
        meta = {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}
        table = {"table": {"family": "ip", "name": T, "handle": 1}}
        return {"nftables": [meta, table, *self.sets, *self.chains, *self.rules]}


def nft_json_for(node: NodeSpec) -> str:
    """`nft -j list ruleset` for a node of plain ClusterIP services (`generate_node(..., variety=False)`)."""
    out = _Json()
    cluster_ips: list[str] = []
    service_ips: list[Any] = []
    for name, key, comment in (
        (
            "firewall-ips",
            ["ipv4_addr", "inet_proto", "inet_service"],
            "destinations that are subject to LoadBalancerSourceRanges",
        ),
        (
            "no-endpoint-nodeports",
            ["inet_proto", "inet_service"],
            "vmap to drop or reject packets to service nodeports with no endpoints",
        ),
        (
            "no-endpoint-services",
            ["ipv4_addr", "inet_proto", "inet_service"],
            "vmap to drop or reject packets to services with no endpoints",
        ),
        (
            "service-ips",
            ["ipv4_addr", "inet_proto", "inet_service"],
            "ClusterIP, ExternalIP and LoadBalancer IP traffic",
        ),
        ("service-nodeports", ["inet_proto", "inet_service"], "NodePort traffic"),
    ):
        body = {
            "family": "ip",
            "name": name,
            "table": T,
            "type": key,
            "handle": out.next_handle(),
            "comment": comment,
            "map": "verdict",
        }
        if name == "service-ips":
            body["elem"] = service_ips
        out.sets.append({"map": body})
    cluster_set = {
        "family": "ip",
        "name": "cluster-ips",
        "table": T,
        "type": "ipv4_addr",
        "handle": out.next_handle(),
        "comment": "Active ClusterIPs",
        "elem": cluster_ips,
    }
    out.sets.insert(0, {"set": cluster_set})
    for name, kind, hook, prio in (
        ("filter-prerouting-pre-dnat", "filter", "prerouting", -110),
        ("filter-output-pre-dnat", "filter", "output", -110),
        ("filter-forward", "filter", "forward", 0),
        ("filter-input", "filter", "input", 0),
        ("filter-output", "filter", "output", 0),
        ("nat-prerouting", "nat", "prerouting", -100),
        ("nat-output", "nat", "output", -100),
        ("nat-postrouting", "nat", "postrouting", 100),
    ):
        out.chain(name, type=kind, hook=hook, prio=prio)
    for name in (
        "cluster-ips-check",
        "firewall-check",
        "mark-for-masquerade",
        "masquerading",
        "nodeport-endpoints-check",
        "services",
        "service-endpoints-check",
        "reject-chain",
    ):
        out.chain(name)
    for chain, target in (
        ("filter-prerouting-pre-dnat", "firewall-check"),
        ("filter-output-pre-dnat", "firewall-check"),
        ("filter-forward", "service-endpoints-check"),
        ("filter-forward", "cluster-ips-check"),
        ("filter-input", "nodeport-endpoints-check"),
        ("filter-input", "service-endpoints-check"),
        ("filter-output", "service-endpoints-check"),
        ("filter-output", "cluster-ips-check"),
    ):
        out.rule(chain, CT_NEW, {"jump": {"target": target}})
    for chain, target in (
        ("nat-prerouting", "services"),
        ("nat-output", "services"),
        ("nat-postrouting", "masquerading"),
    ):
        out.rule(chain, {"jump": {"target": target}})
    daddr = {"payload": {"protocol": "ip", "field": "daddr"}}
    out.rule(
        "cluster-ips-check",
        {"match": {"op": "==", "left": daddr, "right": "@cluster-ips"}},
        {"reject": {"type": "icmp", "expr": "port-unreachable"}},
        comment="Reject traffic to invalid ports of ClusterIPs",
    )
    out.rule(
        "cluster-ips-check",
        {"match": {"op": "==", "left": daddr, "right": {"prefix": {"addr": "172.30.0.0", "len": 16}}}},
        {"drop": None},
        comment="Drop traffic to unallocated ClusterIPs",
    )
    out.rule("firewall-check", {"vmap": {"key": ADDR_KEY, "data": "@firewall-ips"}})
    out.rule("mark-for-masquerade", {"mangle": {"key": MARK, "value": {"|": [MARK, 16384]}}})
    out.rule("masquerading", {"match": {"op": "==", "left": {"&": [MARK, 16384]}, "right": 0}}, {"return": None})
    out.rule("masquerading", {"mangle": {"key": MARK, "value": {"^": [MARK, 16384]}}})
    out.rule("masquerading", {"masquerade": {"flags": "fully-random"}})
    out.rule("nodeport-endpoints-check", NOT_LOOPBACK, {"vmap": {"key": PORT_KEY, "data": "@no-endpoint-nodeports"}})
    out.rule("services", {"vmap": {"key": ADDR_KEY, "data": "@service-ips"}})
    out.rule(
        "services",
        {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}},
        NOT_LOOPBACK,
        {"vmap": {"key": PORT_KEY, "data": "@service-nodeports"}},
    )
    out.rule("service-endpoints-check", {"vmap": {"key": ADDR_KEY, "data": "@no-endpoint-services"}})
    out.rule("reject-chain", {"reject": {"type": "icmp", "expr": "port-unreachable"}})
    saddr = {"payload": {"protocol": "ip", "field": "saddr"}}
    pod_cidr = {"prefix": {"addr": "10.0.0.0", "len": 8}}
    for svc in node.services:
        assert (
            svc.family is IPFamily.IPV4 and svc.endpoints and not svc.externally_accessible and not svc.internal_local
        )
        proto = svc.protocol.value
        chain = "service-" + nft_service_chain_base(svc.namespace, svc.name, proto, svc.port_name)
        targets = []
        for ep in svc.endpoints:
            target = "endpoint-" + nft_endpoint_chain_base(
                svc.namespace, svc.name, proto, svc.port_name, ep.address, ep.port
            )
            targets.append(target)
            out.chain(target)
            out.rule(
                target,
                {"match": {"op": "==", "left": saddr, "right": ep.address}},
                {"jump": {"target": "mark-for-masquerade"}},
            )
            out.rule(
                target,
                {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": proto}},
                {"dnat": {"addr": ep.address, "port": ep.port}},
            )
        out.chain(chain)
        out.rule(
            chain,
            {"match": {"op": "==", "left": daddr, "right": svc.cluster_ip}},
            {"match": {"op": "!=", "left": saddr, "right": pod_cidr}},
            {"jump": {"target": "mark-for-masquerade"}},
        )
        picks = [[i, {"goto": {"target": t}}] for i, t in enumerate(targets)]
        out.rule(
            chain,
            {"vmap": {"key": {"numgen": {"mode": "random", "mod": len(targets), "offset": 0}}, "data": {"set": picks}}},
        )
        cluster_ips.append(svc.cluster_ip)
        service_ips.append([{"concat": [svc.cluster_ip, proto, svc.port]}, {"goto": {"target": chain}}])
    return json.dumps(out.document(), separators=(",", ":"))


def check_shape_against_kernel() -> str:
    """As root: the generated JSON and a kernel's listing of the same node give the same model."""
    if not can_use_kernel("nft"):
        return "not checked against a kernel (needs root and nft)"
    node = generate_node(40, 4, variety=False)
    with namespace("kpa-bench-nft") as ns:
        in_namespace(ns, ["nft", "-f", "-"], render_nft(node, IPFamily.IPV4).encode())
        listed = in_namespace(ns, ["nft", "-j", "list", "ruleset"]).decode()
    from_kernel = normalize_nftables(parse_nft_json(listed, "kernel"))
    generated = normalize_nftables(parse_nft_json(nft_json_for(node), "generated"))
    assert from_kernel.services == generated.services and from_kernel.rules_seen == generated.rules_seen
    return "same model as the kernel's listing of a 40-service node"


def measure_file(path: Path) -> dict[str, float]:
    """Timings and peak RSS for one file, in this process (run in a fresh one by `measure`)."""

    def load() -> Any:
        with open(path) as handle:
            return json.load(handle)

    def load_paused() -> Any:
        gc.disable()
        try:
            return load()
        finally:
            gc.enable()

    reference = best_of(load, 3)
    reference_paused = best_of(load_paused, 3)
    read = best_of(lambda: read_nft_json(str(path)), 3)
    ruleset = read_nft_json(str(path))
    normalize = best_of(lambda: normalize_nftables(ruleset), 3)
    whole = best_of(lambda: normalize_nftables(read_nft_json(str(path))), 3)
    model = normalize_nftables(ruleset)
    assert model.coverage == 1.0 and not model.unmodelled
    return {
        "rules": model.rules_seen,
        "reference": reference,
        "reference_paused": reference_paused,
        "read": read,
        "normalize": normalize,
        "whole": whole,
    }


def peak_rss_mib(path: Path) -> float:
    """Peak RSS of a fresh interpreter that only reads and normalizes `path`."""
    code = (
        "import resource, sys; sys.path.insert(0, sys.argv[2]);"
        "from auditor.parse.nft_json import read_nft_json; from auditor.normalize.nftables import normalize_nftables;"
        "m = normalize_nftables(read_nft_json(sys.argv[1])); assert m.services;"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024  # Linux reports KiB


def measure(services: int, directory: Path) -> dict[str, float]:
    """Write the JSON, check its model, then time it in a fresh process (no heap or GC state
    left over from another size) and measure the peak RSS in another."""
    node = generate_node(services, 4, variety=False)
    path = directory / f"nft-{services}.json"
    path.write_text(nft_json_for(node))
    assert normalize_nftables(read_nft_json(str(path))).services == expected_model(node, ProxyMode.NFTABLES).services
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    result["megabytes"] = path.stat().st_size / 1e6
    result["peak"] = peak_rss_mib(path)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure_file(Path(sys.argv[2]))))
        return
    print(f"generated JSON: {check_shape_against_kernel()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for services in (1_000, 10_000):
            r = results[services] = measure(services, Path(tmp))
            print(
                f"{services:>6} services: {int(r['rules']):>7} rules, {r['megabytes']:.1f} MB; json.load {r['reference'] * 1000:.0f} ms"
                f" (GC paused {r['reference_paused'] * 1000:.0f} ms); read_nft_json {r['read'] * 1000:.0f} ms,"
                f" normalize_nftables {r['normalize'] * 1000:.0f} ms"
            )
            print(
                f"        read + normalize {r['whole'] * 1000:.0f} ms;"
                f" / json.load = {r['whole'] / r['reference']:.2f} (target < 3);"
                f" / json.load with GC paused = {r['whole'] / r['reference_paused']:.2f};"
                f" peak RSS {r['peak']:.0f} MiB (target < 1024)"
            )
    growth = results[10_000]["whole"] / results[1_000]["whole"]
    print(f"growth 1,000 -> 10,000 services (read + normalize): x{growth:.1f} (linear: about 10, target < 12)")


if __name__ == "__main__":
    main()
