"""The tracer as a cross-check of the normalizers: for every frontend of every Service, a
traced packet ends where the model says (outcome, endpoint shares, masquerade, affinity)."""

from __future__ import annotations

import pytest

from auditor.model import IPFamily
from auditor.normalize.iptables import normalize_iptables
from auditor.normalize.nftables import normalize_nftables
from auditor.parse.iptables_save import read_iptables_save
from auditor.parse.nft_json import read_nft_json
from auditor.synth.spec import generate_node
from auditor.trace import IptablesTracer, NftTracer
from auditor.trace.examples import frontend_packet, model_mismatches, node_address
from tests.diffcases import iptables_side, nft_side
from tests.helpers import DATASETS, reference

V4, V6 = IPFamily.IPV4, IPFamily.IPV6
#: the reference data's node addresses (SERVICES.md, "Test conventions")
REFERENCE_ADDRESSES = ("192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2")


def assert_traces_match(model, tracer, local) -> int:  # type: ignore[no-untyped-def]
    checked = 0
    problems = []
    for svc in model.services:
        node = node_address(model, svc.family, local)
        for frontend in svc.frontends:
            packet = frontend_packet(svc, frontend, node)
            assert packet is not None, f"no packet for {svc.name} {frontend}"
            result = tracer.trace(packet)
            found = model_mismatches(result, frontend)
            if found:
                problems.append(f"{svc.name} {frontend.kind.value} {frontend.address}:{frontend.port}: {found}")
            checked += 1
    assert not problems, "\n".join(problems)
    return checked


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("dump", ["iptables-save.txt", "iptables-save.roundtrip-nft.txt", "iptables-save.roundtrip-legacy.txt"])
def test_reference_iptables_traces_agree_with_the_model(dataset: str, dump: str) -> None:
    dumps = [read_iptables_save(str(reference(f"{dataset}.{dump}")))]
    assert assert_traces_match(normalize_iptables(dumps), IptablesTracer(dumps, REFERENCE_ADDRESSES), REFERENCE_ADDRESSES) > 0


@pytest.mark.parametrize("dataset", DATASETS)
def test_reference_nftables_traces_agree_with_the_model(dataset: str) -> None:
    ruleset = read_nft_json(str(reference(f"{dataset}.nft.json")))
    model = normalize_nftables(ruleset)
    assert assert_traces_match(model, NftTracer(ruleset, REFERENCE_ADDRESSES), REFERENCE_ADDRESSES) > 0


FAMILIES = [pytest.param((V4,), id="ipv4"), pytest.param((V6,), id="ipv6"), pytest.param((V4, V6), id="dual-stack")]


@pytest.mark.parametrize("families", FAMILIES)
def test_generated_iptables_traces_agree_with_the_model(families: tuple[IPFamily, ...]) -> None:
    node = generate_node(60, 3, families=families)
    side = iptables_side(node)
    assert side.tracer is not None
    assert assert_traces_match(side.model, side.tracer, side.local_addresses) >= 100


@pytest.mark.kernel
@pytest.mark.parametrize("families", FAMILIES)
def test_generated_nftables_traces_agree_with_the_model(families: tuple[IPFamily, ...]) -> None:
    node = generate_node(60, 3, families=families)
    side = nft_side(node)
    assert side.tracer is not None
    assert assert_traces_match(side.model, side.tracer, side.local_addresses) >= 100


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"masquerade_all": True}, id="masquerade-all"),
        pytest.param({"node_port_addresses": ("192.168.0.2", "127.0.0.1")}, id="node-port-addresses"),
        pytest.param({"localhost_node_ports": False}, id="no-localhost"),
    ],
)
def test_generated_iptables_variants_agree_with_the_model(options: dict[str, object]) -> None:
    node = generate_node(24, 2, **options)  # type: ignore[arg-type]
    side = iptables_side(node)
    assert side.tracer is not None
    assert_traces_match(side.model, side.tracer, side.local_addresses)
