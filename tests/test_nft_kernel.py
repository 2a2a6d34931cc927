"""nftables state loaded into a real kernel (throwaway namespace) with `nft -f`, listed back
with `nft -j list ruleset`, normalized: the reference rulesets, the older layouts, and
generated nodes (IPv4, IPv6, dual-stack with both tables at once), compared with the model
the generator meant and with the iptables-mode model of the same node."""

from __future__ import annotations

import re
import subprocess

import pytest

from auditor.model import IPFamily, ProxyMode, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.normalize.nftables import normalize_nftables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.parse.nft_json import parse_nft_json, read_nft_json
from auditor.synth.expected import expected_model
from auditor.synth.iptables import render_iptables
from auditor.synth.nftables import load_batches, render_nft
from auditor.synth.spec import NodeSpec, generate_node
from tests.helpers import Namespace, namespace, reference, require_kernel
from tests.modelcmp import assert_same_node_facts, assert_same_services
from tests.test_modes_agree import ALLOWED, compare_models
from tests.test_nft_normalize import check_overall, layout_v129, layout_v131, model_of, objects

pytestmark = pytest.mark.kernel
V4, V6 = IPFamily.IPV4, IPFamily.IPV6


def nft_model(ns: Namespace, text: str, *, batches: bool = False) -> ServiceModel:
    for piece in load_batches(text, 40) if batches else [text]:
        ns.run(["nft", "-f", "-"], stdin=piece)
    listed = ns.run(["nft", "-j", "list", "ruleset"])
    return normalize_nftables(parse_nft_json(listed, f"nft -j list ruleset ({ns.name})"), require_table=True)


def iptables_model(node: NodeSpec) -> ServiceModel:
    """The same node in iptables mode: iptables-nft-restore, iptables-nft-save, normalized."""
    dumps = []
    with namespace("kpa-nftk-ipt") as ns:
        for family in node.families:
            tool = "ip6tables" if family is V6 else "iptables"
            ns.run([f"{tool}-nft-restore"], stdin=render_iptables(node, family))
            saved = ns.run([f"{tool}-nft-save"])
            dumps.append(parse_iptables_save(saved, source=f"{tool}-nft-save", ipv6=family is V6))
    return normalize_iptables(dumps)


# --- reference rulesets and older layouts ----------------------------------------------------------


@pytest.mark.parametrize("dataset", ["overall", "repeated-initial"])
def test_reference_ruleset_loads_and_models_like_the_stored_listing(dataset: str) -> None:
    require_kernel("nft")
    with namespace("kpa-nftk") as ns:
        model = nft_model(ns, reference(f"{dataset}.nft.ordered.txt").read_text())
    stored = normalize_nftables(read_nft_json(str(reference(f"{dataset}.nft.json"))))
    assert model.services == stored.services and model.unmodelled == () and model.coverage == 1.0
    if dataset == "overall":
        check_overall(model)


def as_v131(text: str) -> str:
    """overall.nft.ordered.txt in the v1.31-v1.33 layout (see `layout_v131`)."""
    text = text.replace("filter-prerouting-pre-dnat", "filter-prerouting")
    text = text.replace(
        "filter-output-pre-dnat { type filter hook output priority -110 ; }",
        "filter-output-post-dnat { type filter hook output priority -90 ; }",
    )
    text = re.sub(r"(filter-(?:forward|input|output) \{ type filter hook \w+ priority) 0 ;", r"\1 -110 ;", text)
    text = text.replace(
        "filter-output-pre-dnat ct state new jump firewall-check", "filter-output-post-dnat ct state new jump @@"
    )
    text = text.replace(
        "filter-output ct state new jump cluster-ips-check", "filter-output ct state new jump firewall-check"
    )
    text = text.replace("jump @@", "jump cluster-ips-check")
    return re.sub(r"(ip daddr 172\.30\.0\.\d+) (ip saddr != 10)", r"\1 tcp dport 80 \2", text)


def as_v129(text: str) -> str:
    """overall.nft.ordered.txt in the v1.29 alpha layout (see `layout_v129`)."""
    gone = {"cluster-ips", "nodeport-ips", "cluster-ips-check", "nodeport-endpoints-check", "filter-output-pre-dnat"}
    kept = [
        line
        for line in text.splitlines()
        if line.split()[4] not in gone
        and not line.endswith(("jump cluster-ips-check", "jump nodeport-endpoints-check"))
    ]
    out = "\n".join(kept) + "\n"
    out = out.replace("service-endpoints-check", "endpoints-check").replace(
        "filter-prerouting-pre-dnat", "filter-prerouting"
    )
    out = re.sub(r"(type filter hook \w+ priority) 0 ;", r"\1 -110 ;", out)
    out = out.replace(
        "services ip daddr @nodeport-ips meta l4proto",
        "services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto",
    )
    out = out.replace(
        "firewall-ips { 5.6.7.8 . tcp . 80 :", 'firewall-ips { 5.6.7.8 . tcp . 80 comment "ns5/svc5:p80" :'
    )
    rules_end = out.index("add element")
    extra = (
        "add rule ip kube-proxy filter-output ct state new jump firewall-check\n"
        "add rule ip kube-proxy endpoints-check fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports\n"
    )
    out = out[:rules_end] + extra + out[rules_end:]
    return re.sub(r"(ip daddr 172\.30\.0\.\d+) (ip saddr != 10)", r"\1 tcp dport 80 \2", out)


@pytest.mark.parametrize(("layout", "edit"), [("v131", as_v131), ("v129", as_v129)])
def test_older_layouts_from_a_kernel(layout: str, edit: object) -> None:
    """The older layouts, loaded as nft text, model like the edited JSON the unit tests use."""
    require_kernel("nft")
    text = edit(reference("overall.nft.ordered.txt").read_text())  # type: ignore[operator]
    assert "cluster-ips" not in text if layout == "v129" else "filter-output-post-dnat" in text
    with namespace("kpa-nftk") as ns:
        model = nft_model(ns, text)
    edited = model_of(layout_v131(objects()) if layout == "v131" else layout_v129(objects()))
    assert model.services == edited.services
    assert (model.node_port_addresses, model.rules_seen, model.unmodelled) == (
        edited.node_port_addresses,
        edited.rules_seen,
        (),
    )
    check_overall(model)


# --- generated nodes ---------------------------------------------------------------------------------

NODES = {
    "ipv4-varied": generate_node(48, 3, nfacct=False),
    "ipv6-varied": generate_node(36, 2, families=(V6,), nfacct=False),
    "dual-stack": generate_node(24, 3, families=(V4, V6), nfacct=False),
    "masquerade-all": generate_node(24, 2, masquerade_all=True, nfacct=False),
    "nodeport-addresses": generate_node(
        24, 2, families=(V4, V6), node_port_addresses=("192.168.0.2", "2001:db8::1", "127.0.0.1"), nfacct=False
    ),
    "no-endpoints": generate_node(24, 0, nfacct=False),
}

#: the differences from `ALLOWED` each generated node must show against its iptables model
EXPECTED_DIFFERENCES = {
    "ipv4-varied": {
        "localhost_node_ports",
        "health_check_node_ports",
        "kind_uncertain",
        "source_range_order",
        "rule_counts",
    },
    "ipv6-varied": {"health_check_node_ports", "kind_uncertain", "source_range_order", "rule_counts"},
    "dual-stack": {
        "localhost_node_ports",
        "health_check_node_ports",
        "kind_uncertain",
        "source_range_order",
        "rule_counts",
    },
    "masquerade-all": {
        "localhost_node_ports",
        "health_check_node_ports",
        "kind_uncertain",
        "source_range_order",
        "rule_counts",
    },
    # iptables mode keeps 127.0.0.1 (localhost NodePorts); kube-proxy's nftables mode leaves it out
    "nodeport-addresses": {
        "node_port_addresses",
        "localhost_node_ports",
        "health_check_node_ports",
        "kind_uncertain",
        "source_range_order",
        "rule_counts",
    },
    # without endpoints iptables has only filter REJECTs, as unsure of external vs LB kinds as nftables
    "no-endpoints": {"localhost_node_ports", "health_check_node_ports", "reject_keeps_firewall", "rule_counts"},
}


@pytest.mark.parametrize("name", sorted(NODES))
def test_generated_node_round_trips_through_the_kernel(name: str) -> None:
    require_kernel("nft", "iptables-nft-restore", "ip6tables-nft-restore")
    node = NODES[name]
    text = "".join(render_nft(node, family) for family in node.families)  # dual-stack: both tables at once
    with namespace("kpa-nftk") as ns:
        model = nft_model(ns, text)
    expected = expected_model(node, ProxyMode.NFTABLES)
    assert_same_services(model, expected)
    assert_same_node_facts(model, expected)
    assert model.unmodelled == () and model.coverage == 1.0 and model.rules_seen > 0
    assert model.families == node.families

    ipt = iptables_model(node)
    assert ipt.unmodelled == ()
    seen = compare_models(ipt, model)
    assert seen == EXPECTED_DIFFERENCES[name], {k: ALLOWED[k] for k in seen ^ EXPECTED_DIFFERENCES[name]}


def test_every_shape_takes_part() -> None:
    """The varied nodes exercise every rule shape the normalizer knows."""
    text = render_nft(NODES["ipv4-varied"], V4)
    for shape in (
        "goto local-",
        "short-circuit pod traffic",
        "fib saddr type local",
        "@affinity-",
        "firewall-ips {",
        "no-endpoint-nodeports {",
        "goto reject-chain",
        ": drop",
        "sctp",
        "udp",
        "/tcp/ ",
    ):
        assert shape in text or shape.rstrip() in text, shape


def test_loading_in_batches_gives_the_same_ruleset() -> None:
    require_kernel("nft")
    node = NODES["dual-stack"]
    text = "".join(render_nft(node, family) for family in node.families)
    assert len(load_batches(text, 40)) > 10
    with namespace("kpa-nftk") as one, namespace("kpa-nftk") as many:
        assert nft_model(one, text) == nft_model(many, text, batches=True)


def test_namespaces_are_cleaned_up() -> None:
    require_kernel("nft")
    host_before = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    with namespace("kpa-nftk") as ns:
        name = ns.name
        ns.run(["nft", "-f", "-"], stdin=reference("repeated-initial.nft.ordered.txt").read_text())
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert name not in listed
    host_after = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert host_after == host_before  # nothing reached the host's own ruleset
