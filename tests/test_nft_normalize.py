"""nftables mode: the reference rulesets come out as SERVICES.md describes, Service by Service;
older layouts, cut names, stale chains and unknown expressions are handled without guessing.

Variants are derived from `overall.nft.json` (what a real nft 1.0.6 printed) by small, named
edits, so every shape is one nft really prints; test_nft_kernel.py loads the same layouts
as nft text into a kernel.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from auditor.errors import InputError
from auditor.model import Frontend, FrontendKind, IPFamily, Masquerade, ProxyMode, Result, ServiceModel
from auditor.naming import nft_service_chain_base
from auditor.normalize.nftables import normalize_nftables
from auditor.normalize.nftables_facts import read_facts
from auditor.parse.nft_json import NftRuleset, parse_nft_json, read_nft_json
from tests.helpers import reference

Objects = list[dict[str, Any]]


def load(name: str) -> ServiceModel:
    return normalize_nftables(read_nft_json(str(reference(name))), require_table=True)


def objects(name: str = "overall.nft.json") -> Objects:
    return copy.deepcopy(json.loads(reference(name).read_text())["nftables"])


def model_of(objs: Objects, **kwargs: Any) -> ServiceModel:
    return normalize_nftables(ruleset_of(objs), **kwargs)


def ruleset_of(objs: Objects) -> NftRuleset:
    return parse_nft_json(json.dumps({"nftables": objs}), "variant.json")


def frontend(model: ServiceModel, name: str, kind: FrontendKind, address: str | None = None) -> Frontend:
    svc = model.service(name)
    matches = [f for f in svc.frontends if f.kind is kind and (address is None or f.address == address)]
    assert len(matches) == 1, f"{name}: expected one {kind} {address}, got {svc.frontends}"
    return matches[0]


def endpoints(f: Frontend) -> list[tuple[str, int, float]]:
    return [(e.address, e.port, round(e.probability, 6)) for e in f.endpoints]


# --- edits on the object list ------------------------------------------------------------------


def rules_of(objs: Objects, chain: str) -> list[dict[str, Any]]:
    return [o["rule"] for o in objs if "rule" in o and o["rule"]["chain"] == chain]


def rule(objs: Objects, handle: int) -> dict[str, Any]:
    (found,) = [o["rule"] for o in objs if "rule" in o and o["rule"]["handle"] == handle]
    return found


def drop_objects(objs: Objects, keep: Callable[[dict[str, Any]], bool]) -> Objects:
    return [o for o in objs if keep(o)]


def renamed(objs: Objects, old: str, new: str) -> Objects:
    """Every occurrence of a name (chains, jump targets, element comments) replaced."""
    return json.loads(json.dumps(objs).replace(old, new))


def add_rule(objs: Objects, chain: str, handle: int, *expr: Any, family: str = "ip") -> None:
    objs.append(
        {"rule": {"family": family, "table": "kube-proxy", "chain": chain, "handle": handle, "expr": list(expr)}}
    )


def add_chain(objs: Objects, name: str, handle: int, **base: Any) -> None:
    body = {"family": "ip", "table": "kube-proxy", "name": name, "handle": handle, **base}
    index = max(i for i, o in enumerate(objs) if "chain" in o) + 1
    objs.insert(index, {"chain": body})


def daddr(right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": right}}


NOT_LOOPBACK = daddr({"prefix": {"addr": "127.0.0.0", "len": 8}}, "!=")
FIB_LOCAL = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
PORT_KEY = {"concat": [{"meta": {"key": "l4proto"}}, {"payload": {"protocol": "th", "field": "dport"}}]}
SERVICE_MASQ_HANDLES = (64, 69, 77, 84, 93)  # `ip daddr <clusterIP> ip saddr != 10.0.0.0/8 jump mark-for-masquerade`


def with_masquerade_dport(objs: Objects) -> Objects:
    """v1.29-v1.33: the service chain's masquerade rule also matches `tcp dport <port>`."""
    for handle in SERVICE_MASQ_HANDLES:
        expr = rule(objs, handle)["expr"]
        expr.insert(1, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 80}})
    return objs


def layout_v131(objs: Objects) -> Objects:
    """v1.31-v1.33: filter-prerouting / -input / -forward / -output at -110, filter-output-post-dnat at -90."""
    objs = renamed(objs, '"filter-prerouting-pre-dnat"', '"filter-prerouting"')
    objs = renamed(objs, '"filter-output-pre-dnat"', '"filter-output-post-dnat"')
    for o in objs:
        chain = o.get("chain", {})
        if chain.get("name") in ("filter-forward", "filter-input", "filter-output", "filter-prerouting"):
            chain["prio"] = -110
        elif chain.get("name") == "filter-output-post-dnat":
            chain["prio"] = -90
    # filter-output jumps to firewall-check, filter-output-post-dnat to cluster-ips-check
    rule(objs, 49)["expr"][1] = {"jump": {"target": "cluster-ips-check"}}
    rule(objs, 50)["expr"][1] = {"jump": {"target": "firewall-check"}}
    return with_masquerade_dport(objs)


def layout_v129(objs: Objects) -> Objects:
    """The v1.29 alpha: one endpoints-check chain (NodePorts by `fib daddr type local`), no
    cluster-ips set or cluster-ips-check, no nodeport-ips, NodePort dispatch by fib too."""
    objs = drop_objects(
        objs,
        lambda o: (
            o.get("set", {}).get("name") not in ("cluster-ips", "nodeport-ips")
            and o.get("chain", {}).get("name")
            not in ("cluster-ips-check", "nodeport-endpoints-check", "filter-output-pre-dnat")
            and o.get("rule", {}).get("chain")
            not in ("cluster-ips-check", "nodeport-endpoints-check", "filter-output-pre-dnat")
            and o.get("rule", {}).get("handle") not in (45, 46, 50)
        ),
    )
    objs = renamed(objs, "service-endpoints-check", "endpoints-check")
    objs = renamed(objs, '"filter-prerouting-pre-dnat"', '"filter-prerouting"')
    add_rule(
        objs,
        "filter-output",
        200,
        {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}},
        {"jump": {"target": "firewall-check"}},
    )
    add_rule(
        objs,
        "endpoints-check",
        201,
        FIB_LOCAL,
        NOT_LOOPBACK,
        {"vmap": {"key": PORT_KEY, "data": "@no-endpoint-nodeports"}},
    )
    rule(objs, 62)["expr"][0:1] = [FIB_LOCAL, NOT_LOOPBACK]  # services: NodePorts on every local address
    for o in objs:
        if o.get("map", {}).get("name") == "firewall-ips":  # the alpha commented firewall elements
            key, verdict = o["map"]["elem"][0]
            o["map"]["elem"][0] = [{"elem": {"val": key, "comment": "ns5/svc5:p80"}}, verdict]
        if "chain" in o and o["chain"].get("type") == "filter":
            o["chain"]["prio"] = -110
    return with_masquerade_dport(objs)


# --- the reference datasets --------------------------------------------------------------------------


def check_overall(m: ServiceModel) -> None:
    """SERVICES.md's `overall` dataset as nftables mode shows it."""
    assert [s.name for s in m.services] == [f"ns{i}/svc{i}:p80" for i in range(1, 7)]
    assert all(s.protocol.value == "tcp" and s.family is IPFamily.IPV4 for s in m.services)
    assert m.mode is ProxyMode.NFTABLES and m.families == (IPFamily.IPV4,)
    assert not m.localhost_node_ports and m.health_check_node_ports == ()  # nftables mode has neither
    assert m.local_traffic == ("10.0.0.0/8",)

    # svc1: ClusterIP -> one endpoint
    (f,) = m.service("ns1/svc1:p80").frontends
    assert (f.kind, f.address, f.port, f.result, f.kind_certain) == (
        FrontendKind.CLUSTER_IP,
        "172.30.0.41",
        80,
        Result.DNAT,
        True,
    )
    assert endpoints(f) == [("10.180.0.1", 80, 1.0)]
    assert f.masquerade is Masquerade.OFF_CLUSTER and not f.local_only and f.affinity_seconds is None

    # svc2: eTP Local, no local endpoints: external paths drop, pods and the node short-circuit
    svc2 = m.service("ns2/svc2:p80")
    assert len(svc2.frontends) == 4
    f = frontend(m, "ns2/svc2:p80", FrontendKind.CLUSTER_IP)
    assert endpoints(f) == [("10.180.0.2", 80, 1.0)] and not f.local_only and f.masquerade is Masquerade.OFF_CLUSTER
    # the external IP and the LB IP share one `goto external-...`: the rules cannot tell them apart
    for address in ("1.2.3.4", "192.168.99.22"):
        f = frontend(m, "ns2/svc2:p80", FrontendKind.EXTERNAL_IP, address)
        assert (f.port, f.result, f.endpoints, f.kind_certain) == (80, Result.DROP, (), False)
        assert f.local_only and f.short_circuit and f.masquerade is Masquerade.NONE
    f = frontend(m, "ns2/svc2:p80", FrontendKind.NODE_PORT)
    assert (f.address, f.port, f.result, f.kind_certain) == (None, 3001, Result.DROP, True)
    assert f.local_only and f.short_circuit

    # svc3: NodePort, external traffic masqueraded
    f = frontend(m, "ns3/svc3:p80", FrontendKind.NODE_PORT)
    assert f.port == 3003 and endpoints(f) == [("10.180.0.3", 80, 1.0)] and f.masquerade is Masquerade.ALL
    assert not f.local_only and not f.short_circuit
    assert endpoints(frontend(m, "ns3/svc3:p80", FrontendKind.CLUSTER_IP)) == [("10.180.0.3", 80, 1.0)]

    # svc4: two endpoints at 1/2 each (numgen mod 2), on the cluster IP and the external IP
    for kind, address in ((FrontendKind.CLUSTER_IP, "172.30.0.44"), (FrontendKind.EXTERNAL_IP, "192.168.99.33")):
        f = frontend(m, "ns4/svc4:p80", kind, address)
        assert f.result is Result.DNAT and endpoints(f) == [("10.180.0.4", 80, 0.5), ("10.180.0.5", 80, 0.5)]
        assert not f.local_only
    assert not frontend(m, "ns4/svc4:p80", FrontendKind.EXTERNAL_IP).kind_certain
    assert frontend(m, "ns4/svc4:p80", FrontendKind.EXTERNAL_IP).masquerade is Masquerade.ALL

    # svc5: LB (known from firewall-ips) with source range and affinity; the NodePort is not filtered
    lb = frontend(m, "ns5/svc5:p80", FrontendKind.LOAD_BALANCER, "5.6.7.8")
    assert lb.kind_certain and lb.source_ranges == ("203.0.113.0/25",) and lb.affinity_seconds == 10800
    assert endpoints(lb) == [("10.180.0.3", 80, 1.0)] and lb.masquerade is Masquerade.ALL
    np = frontend(m, "ns5/svc5:p80", FrontendKind.NODE_PORT)
    assert np.port == 3002 and np.source_ranges == () and np.affinity_seconds == 10800
    assert frontend(m, "ns5/svc5:p80", FrontendKind.CLUSTER_IP).affinity_seconds == 10800
    assert len(m.service("ns5/svc5:p80").frontends) == 3

    # svc6: no endpoints -> `goto reject-chain` in no-endpoint-services
    (f,) = m.service("ns6/svc6:p80").frontends
    assert (f.address, f.port, f.result, f.endpoints, f.local_only) == ("172.30.0.46", 80, Result.REJECT, (), False)
    assert f.origin and f.origin[0].chain == "no-endpoint-services"


def test_overall() -> None:
    m = load("overall.nft.json")
    check_overall(m)
    assert frontend(m, "ns6/svc6:p80", FrontendKind.CLUSTER_IP).kind_certain  # in cluster-ips
    assert m.node_port_addresses == ("192.168.0.2",)  # the fake proxier's nodePortAddresses
    assert m.unmodelled == () and m.rules_seen == m.rules_modelled == 57


def test_repeated_initial() -> None:
    m = load("repeated-initial.nft.json")
    assert [s.name for s in m.services] == ["ns1/svc1:p80", "ns2/svc2:p8080"]
    f = frontend(m, "ns1/svc1:p80", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port) == ("172.30.0.41", 80) and endpoints(f) == [("10.0.1.1", 80, 1.0)]
    f = frontend(m, "ns2/svc2:p8080", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port) == ("172.30.0.42", 8080) and endpoints(f) == [("10.0.2.1", 8080, 1.0)]
    assert m.unmodelled == () and m.coverage == 1.0 and m.rules_seen == 31


def test_origin_points_at_the_map_element() -> None:
    f = frontend(load("overall.nft.json"), "ns5/svc5:p80", FrontendKind.LOAD_BALANCER)
    assert [(r.table, r.chain, r.line) for r in f.origin] == [
        ("ip kube-proxy", "service-ips", 0),
        ("ip kube-proxy", "firewall-ips", 0),
    ]
    assert f.origin[0].rule == "element 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80"


# --- older layouts ----------------------------------------------------------------------------------


def test_v131_layout_gives_the_same_model() -> None:
    m = model_of(layout_v131(objects()))
    assert m == load("overall.nft.json")
    assert m.unmodelled == () and m.coverage == 1.0


def test_v129_alpha_layout() -> None:
    m = model_of(layout_v129(objects()))
    check_overall(m)
    assert m.unmodelled == () and m.coverage == 1.0
    assert m.node_port_addresses == ("local",)  # NodePorts by `fib daddr type local`
    # without a cluster-ips set a lone reject cannot be told from an external IP's
    f = frontend(m, "ns6/svc6:p80", FrontendKind.EXTERNAL_IP)
    assert (f.address, f.result, f.kind_certain) == ("172.30.0.46", Result.REJECT, False)


def test_v129_lone_drop_is_the_cluster_ip() -> None:
    """Without cluster-ips, a drop with no service-ips entry is an internal-policy Local cluster IP."""
    objs = layout_v129(objects())
    for o in objs:
        if o.get("map", {}).get("name") == "no-endpoint-services":
            o["map"]["elem"][2][1] = {"drop": None}  # ns6's cluster IP: drop instead of reject
    f = model_of(objs).service("ns6/svc6:p80").frontends[0]
    assert (f.kind, f.result, f.local_only, f.kind_certain) == (FrontendKind.CLUSTER_IP, Result.DROP, True, False)


# --- names ------------------------------------------------------------------------------------------


def test_unnamed_port_has_no_colon() -> None:
    objs = renamed(objects(), "ns1/svc1/tcp/p80", "ns1/svc1/tcp/")
    names = [s.name for s in model_of(objs).services]
    assert "ns1/svc1" in names and "ns1/svc1:p80" not in names


def test_cut_chain_name_falls_back_to_the_element_comment() -> None:
    """A per-service chain name cut at 240 characters ends in "...": the name comes from the
    no-endpoint element's comment, confirmed by the hash, and is shared by the other
    frontends of the same chain base."""
    long_ns, long_svc, port = "n" * 120, "s" * 120, "p80"
    base = nft_service_chain_base(long_ns, long_svc, "tcp", port)
    assert base.endswith("...")
    objs = renamed(objects(), "42NFTM6N-ns2/svc2/tcp/p80", base)
    objs = renamed(objs, '"ns2/svc2:p80"', f'"{long_ns}/{long_svc}:{port}"')
    m = model_of(objs)
    svc = m.service(f"{long_ns}/{long_svc}:{port}")
    assert len(svc.frontends) == 4 and m.unmodelled == ()
    assert endpoints(frontend(m, svc.name, FrontendKind.CLUSTER_IP)) == [("10.180.0.2", 80, 1.0)]


def test_cut_chain_name_without_a_matching_comment_is_not_guessed() -> None:
    base = nft_service_chain_base("n" * 120, "s" * 120, "tcp", "p80")
    objs = renamed(objects(), "4AT6LBPK-ns3/svc3/tcp/p80", base)  # svc3 has no element comments
    m = model_of(objs)
    assert base in [s.name for s in m.services]
    assert "ns3/svc3:p80" not in [s.name for s in m.services]


def test_cut_endpoint_chain_names_do_not_matter() -> None:
    objs = renamed(
        objects(), "endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80", "endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.18..."
    )
    m = model_of(objs)
    f = frontend(m, "ns4/svc4:p80", FrontendKind.CLUSTER_IP)
    assert endpoints(f) == [("10.180.0.4", 80, 0.5), ("10.180.0.5", 80, 0.5)] and m.unmodelled == ()


# --- stale chains, unknown expressions, unreachable maps -------------------------------------------------


def test_stale_empty_chains_are_normal() -> None:
    objs = objects()
    add_chain(objs, "service-AAAAAAAA-ns9/svc9/tcp/p80", 300)
    add_chain(objs, "endpoint-BBBBBBBB-ns9/svc9/tcp/p80__10.9.9.9/80", 301)
    m = model_of(objs)
    assert m.services == load("overall.nft.json").services
    assert m.unmodelled == () and m.coverage == 1.0


def test_stale_chain_with_rules_is_unmodelled() -> None:
    objs = objects()
    add_chain(objs, "endpoint-BBBBBBBB-ns9/svc9/tcp/p80__10.9.9.9/80", 301)
    add_rule(
        objs,
        "endpoint-BBBBBBBB-ns9/svc9/tcp/p80__10.9.9.9/80",
        302,
        {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}},
        {"dnat": {"addr": "10.9.9.9", "port": 80}},
    )
    m = model_of(objs)
    (u,) = m.unmodelled
    assert (u.table, u.line, u.rule) == ("ip kube-proxy", 302, "meta l4proto tcp dnat to 10.9.9.9:80")
    assert "stale" in u.reason and u.source == "variant.json"
    assert m.rules_seen == 58 and m.rules_modelled == 57


def test_unknown_expression_in_a_service_chain_is_unmodelled_not_guessed() -> None:
    objs = objects()
    # a rate limit in front of svc1's endpoint choice: not something kube-proxy writes
    rule(objs, 66)["expr"].insert(0, {"limit": {"rate": 10, "per": "second"}})
    m = model_of(objs)
    reasons = {(u.chain.split("-")[0], u.line): u.reason for u in m.unmodelled}
    assert reasons[("service", 66)].startswith("not an endpoint-selection rule kube-proxy writes: limit rate 10/second")
    # with its only endpoint rule not understood, svc1 has no DNAT: no frontend; the map
    # element that dispatches it and the endpoint chain behind the rule are reported too
    assert "ns1/svc1:p80" not in [s.name for s in m.services]
    assert reasons[("service", 0)] == "dispatched, but no DNAT follows and no no-endpoint element drops it"
    assert (
        reasons[("endpoint", 67)] == reasons[("endpoint", 68)] == "reached only through a rule kp-audit does not model"
    )
    assert len(m.unmodelled) == 4 and m.rules_modelled == m.rules_seen - 3


def test_unknown_expression_in_an_endpoint_chain() -> None:
    objs = objects()
    rule(objs, 92)["expr"].insert(1, {"log": {"prefix": "x"}})  # svc4's DNAT to 10.180.0.4
    m = model_of(objs)
    f = frontend(m, "ns4/svc4:p80", FrontendKind.CLUSTER_IP)
    assert endpoints(f) == [("10.180.0.5", 80, 0.5)]  # the other half is not silently given away
    reasons = {x.line: x.reason for x in m.unmodelled}
    assert "log" in reasons[92] and "without a DNAT" in reasons[86]


def test_unknown_rule_in_a_fixed_chain_leaves_services_alone() -> None:
    objs = objects()
    add_rule(
        objs,
        "services",
        303,
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth9"}},
        {"accept": None},
    )
    m = model_of(objs)
    assert m.services == load("overall.nft.json").services
    assert [(u.chain, u.line) for u in m.unmodelled] == [("services", 303)]


def test_dispatch_map_nothing_reaches_is_not_used() -> None:
    """Without the nat hooks' `jump services`, nothing looks up @service-ips: no DNAT."""
    objs = drop_objects(objects(), lambda o: o.get("rule", {}).get("handle") not in (56, 58))
    m = model_of(objs)
    assert [s.name for s in m.services] == ["ns2/svc2:p80", "ns6/svc6:p80"]  # only the filter verdicts remain
    assert any("looks up @service-ips" in u.reason for u in m.unmodelled)


@pytest.mark.parametrize(
    ("replacement", "masquerade", "local_traffic"),
    [
        (None, Masquerade.ALL, ()),  # masqueradeAll: no source test
        (
            {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "cbr0"}},
            Masquerade.OFF_CLUSTER,
            ("iif cbr0",),
        ),
        (
            {"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "veth*"}},
            Masquerade.OFF_CLUSTER,
            ("iif veth+",),
        ),
    ],
    ids=["masquerade-all", "interface", "interface-prefix"],
)
def test_masquerade_rule_variants(replacement: Any, masquerade: Masquerade, local_traffic: tuple[str, ...]) -> None:
    objs = objects("repeated-initial.nft.json")
    for o in objs:
        r = o.get("rule")
        if r and r["chain"].startswith("service-") and len(r["expr"]) == 3:
            r["expr"][1:2] = [replacement] if replacement else []
    m = model_of(objs)
    f = frontend(m, "ns1/svc1:p80", FrontendKind.CLUSTER_IP)
    assert f.masquerade is masquerade and m.local_traffic == local_traffic and m.unmodelled == ()


def test_masquerade_for_another_destination_does_not_count() -> None:
    objs = objects("repeated-initial.nft.json")
    for o in objs:
        r = o.get("rule")
        if r and r["chain"].startswith("service-") and len(r["expr"]) == 3:
            r["expr"][0]["match"]["right"] = "172.30.9.9"
    f = frontend(model_of(objs), "ns1/svc1:p80", FrontendKind.CLUSTER_IP)
    assert f.masquerade is Masquerade.NONE


# --- no kube-proxy table ---------------------------------------------------------------------------


def test_no_kube_proxy_table_both_ways() -> None:
    empty = parse_nft_json(json.dumps({"nftables": [objects()[0]]}), "empty.json")
    with pytest.raises(InputError) as info:
        normalize_nftables(empty, require_table=True)
    assert str(info.value) == "empty.json: no kube-proxy table (table ip/ip6 kube-proxy) in empty.json"
    assert info.value.exit_code == 3
    m = normalize_nftables(empty)
    assert (m.services, m.families, m.unmodelled, m.rules_seen) == ((), (), (), 0)


def test_iptables_nft_backend_tables_are_not_services() -> None:
    ruleset = read_nft_json(str(reference("overall.iptables-nft-backend.nft.json")))
    m = normalize_nftables(ruleset)
    assert (m.services, m.families, m.unmodelled, m.rules_seen) == ((), (), (), 0)
    with pytest.raises(InputError) as info:
        normalize_nftables(ruleset, require_table=True)
    assert "no kube-proxy table" in str(info.value) and "iptables mode" in str(info.value)


def test_other_tables_next_to_kube_proxy_are_left_alone() -> None:
    objs = objects()
    objs += json.loads(reference("overall.iptables-nft-backend.nft.json").read_text())["nftables"][1:]
    objs.append({"table": {"family": "inet", "name": "kube-proxy", "handle": 99}})
    m = model_of(objs)
    assert m == load("overall.nft.json")


def test_ip6_table_only() -> None:
    objs = renamed(objects("repeated-initial.nft.json"), '"family": "ip"', '"family": "ip6"')
    objs = renamed(objs, '"protocol": "ip"', '"protocol": "ip6"')
    m = model_of(objs)
    assert m.families == (IPFamily.IPV6,) and [s.family for s in m.services] == [IPFamily.IPV6] * 2


# --- the two fact readers agree ------------------------------------------------------------------------


VARIANTS: dict[str, Callable[[], Objects]] = {
    "overall": objects,
    "repeated-initial": lambda: objects("repeated-initial.nft.json"),
    "v131": lambda: layout_v131(objects()),
    "v129": lambda: layout_v129(objects()),
    "iptables-nft-backend": lambda: objects("overall.iptables-nft-backend.nft.json"),
}


def facts(f: object) -> dict[str, Any]:
    return {name: getattr(f, name) for name in dir(type(f)) if not name.startswith("_")}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fast_and_general_fact_readers_agree(variant: str) -> None:
    ruleset = ruleset_of(VARIANTS[variant]())
    seen = 0
    for table in ruleset.tables:
        ipx = table.family.value if table.family.value in ("ip", "ip6") else "ip"
        for chain in table.chains.values():
            for r in chain.rules:
                fast, slow = read_facts(r, ipx), read_facts(r, ipx, fast=False)
                assert facts(fast) == facts(slow), f"{chain.name} handle {r.handle}"
                seen += 1
    assert seen > 0
