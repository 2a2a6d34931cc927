"""Generated iptables state loaded into a real kernel (throwaway namespace), dumped back by
each backend's iptables-save, normalized: the model the generator meant."""

from __future__ import annotations

import pytest

from auditor.model import IPFamily, ProxyMode
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.synth.expected import expected_model
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import NodeSpec, generate_node
from tests.helpers import Namespace, namespace, reference, require_kernel
from tests.modelcmp import assert_same_node_facts, assert_same_services

pytestmark = pytest.mark.kernel
V4, V6 = IPFamily.IPV4, IPFamily.IPV6
NFACCT_OBJECTS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")


def load_and_dump(ns: Namespace, node: NodeSpec, backend: str) -> list:
    if node.nfacct:
        for name in NFACCT_OBJECTS:
            ns.run(["nfacct", "add", name], check=False)
    dumps = []
    for family in node.families:
        tool = "ip6tables" if family is V6 else "iptables"
        ns.run([f"{tool}-{backend}-restore"], stdin=render_iptables(node, family))
        text = ns.run([f"{tool}-{backend}-save"])
        dumps.append(parse_iptables_save(text, source=f"{tool}-{backend}-save", ipv6=family is V6))
    return dumps


@pytest.mark.parametrize("backend", ["nft", "legacy"])
@pytest.mark.parametrize(
    "node",
    [
        generate_node(36, 3),
        generate_node(24, 2, families=(V4, V6)),
        generate_node(30, 40, nfacct=False, localhost_node_ports=False),
    ],
    ids=["ipv4-varied", "dual-stack", "large-cluster"],
)
def test_generated_state_round_trips_through_the_kernel(backend: str, node: NodeSpec) -> None:
    require_kernel(f"iptables-{backend}-restore", "nfacct" if node.nfacct else "ip")
    with namespace("kpa-ipt") as ns:
        model = normalize_iptables(load_and_dump(ns, node, backend))
    expected = expected_model(node, ProxyMode.IPTABLES)
    assert_same_services(model, expected)
    assert_same_node_facts(model, expected)
    assert model.unmodelled == () and model.rules_seen == model.rules_modelled > 0


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_reference_dump_round_trips(backend: str) -> None:
    """kube-proxy's own test output, restored and saved here, models like the file itself."""
    require_kernel(f"iptables-{backend}-restore", "nfacct")
    text = reference("overall.iptables-save.txt").read_text()
    with namespace("kpa-ipt") as ns:
        for name in NFACCT_OBJECTS:
            ns.run(["nfacct", "add", name])
        ns.run([f"iptables-{backend}-restore"], stdin=text)
        saved = ns.run([f"iptables-{backend}-save"])
    from_kernel = normalize_iptables([parse_iptables_save(saved)])
    from_file = normalize_iptables([parse_iptables_save(text)])
    assert from_kernel.services == from_file.services
    assert from_kernel.unmodelled == ()


def test_namespaces_are_cleaned_up() -> None:
    require_kernel()
    import subprocess

    def listed() -> str:
        return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout

    with namespace("kpa-ipt") as ns:
        assert ns.name in listed()
    assert ns.name not in listed()
