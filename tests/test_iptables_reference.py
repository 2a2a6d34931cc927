"""The reference datasets (kube-proxy's own test output, and what real iptables-save printed
back from both backends) come out as SERVICES.md describes, Service by Service."""

from __future__ import annotations

import pytest

from auditor.model import FrontendKind, Masquerade, Result, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import read_iptables_save
from tests.helpers import reference

DUMPS = ("iptables-save.txt", "iptables-save.roundtrip-nft.txt", "iptables-save.roundtrip-legacy.txt")


def load(dataset: str, dump: str) -> ServiceModel:
    return normalize_iptables([read_iptables_save(str(reference(f"{dataset}.{dump}")))])


def frontend(model: ServiceModel, name: str, kind: FrontendKind, address: str | None = None):
    svc = model.service(name)
    matches = [f for f in svc.frontends if f.kind is kind and (address is None or f.address == address)]
    assert len(matches) == 1, f"{name}: expected one {kind} {address}, got {svc.frontends}"
    return matches[0]


def endpoints(f) -> list[tuple[str, int, float]]:
    return [(e.address, e.port, round(e.probability, 6)) for e in f.endpoints]


@pytest.mark.parametrize("dump", DUMPS)
def test_overall(dump: str) -> None:
    m = load("overall", dump)
    assert [s.name for s in m.services] == [f"ns{i}/svc{i}:p80" for i in range(1, 7)]
    assert all(s.protocol.value == "tcp" and s.family.value == "ipv4" for s in m.services)
    assert m.node_port_addresses == ("local",)
    assert m.localhost_node_ports  # the fake proxier enables localhost NodePorts
    assert [(h.port, h.service) for h in m.health_check_node_ports] == [(30000, "ns2/svc2:p80")]
    assert m.local_traffic == ("10.0.0.0/8",)
    assert m.unmodelled == () and m.rules_seen == m.rules_modelled == 65

    # svc1: ClusterIP -> one endpoint
    f = frontend(m, "ns1/svc1:p80", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port, f.result) == ("172.30.0.41", 80, Result.DNAT)
    assert endpoints(f) == [("10.180.0.1", 80, 1.0)]
    assert f.masquerade is Masquerade.OFF_CLUSTER and not f.local_only and f.affinity_seconds is None
    assert len(m.service("ns1/svc1:p80").frontends) == 1

    # svc2: eTP Local with no local endpoints: external paths drop, cluster IP works
    svc2 = m.service("ns2/svc2:p80")
    assert len(svc2.frontends) == 4
    f = frontend(m, "ns2/svc2:p80", FrontendKind.CLUSTER_IP)
    assert endpoints(f) == [("10.180.0.2", 80, 1.0)] and not f.local_only
    for kind, address, port in (
        (FrontendKind.EXTERNAL_IP, "192.168.99.22", 80),
        (FrontendKind.LOAD_BALANCER, "1.2.3.4", 80),
        (FrontendKind.NODE_PORT, None, 3001),
    ):
        f = frontend(m, "ns2/svc2:p80", kind, address)
        assert f.port == port and f.result is Result.DROP and f.endpoints == ()
        assert f.local_only and f.short_circuit

    # svc3: NodePort, external traffic masqueraded
    f = frontend(m, "ns3/svc3:p80", FrontendKind.NODE_PORT)
    assert f.port == 3003 and endpoints(f) == [("10.180.0.3", 80, 1.0)] and f.masquerade is Masquerade.ALL
    assert endpoints(frontend(m, "ns3/svc3:p80", FrontendKind.CLUSTER_IP)) == [("10.180.0.3", 80, 1.0)]

    # svc4: two endpoints at 1/2 each, on the cluster IP and the external IP
    for kind, address in ((FrontendKind.CLUSTER_IP, "172.30.0.44"), (FrontendKind.EXTERNAL_IP, "192.168.99.33")):
        f = frontend(m, "ns4/svc4:p80", kind, address)
        assert f.result is Result.DNAT and endpoints(f) == [("10.180.0.4", 80, 0.5), ("10.180.0.5", 80, 0.5)]
        assert not f.local_only

    # svc5: LB with source range and affinity; the NodePort is not filtered
    lb = frontend(m, "ns5/svc5:p80", FrontendKind.LOAD_BALANCER, "5.6.7.8")
    assert lb.source_ranges == ("203.0.113.0/25",) and lb.affinity_seconds == 10800
    assert endpoints(lb) == [("10.180.0.3", 80, 1.0)]
    np = frontend(m, "ns5/svc5:p80", FrontendKind.NODE_PORT)
    assert np.port == 3002 and np.source_ranges == () and np.affinity_seconds == 10800
    assert frontend(m, "ns5/svc5:p80", FrontendKind.CLUSTER_IP).affinity_seconds == 10800

    # svc6: no endpoints -> REJECT
    f = frontend(m, "ns6/svc6:p80", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port, f.result, f.endpoints) == ("172.30.0.46", 80, Result.REJECT, ())


@pytest.mark.parametrize("dump", DUMPS)
def test_repeated_initial(dump: str) -> None:
    m = load("repeated-initial", dump)
    assert [s.name for s in m.services] == ["ns1/svc1:p80", "ns2/svc2:p8080"]
    f = frontend(m, "ns1/svc1:p80", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port) == ("172.30.0.41", 80) and endpoints(f) == [("10.0.1.1", 80, 1.0)]
    f = frontend(m, "ns2/svc2:p8080", FrontendKind.CLUSTER_IP)
    assert (f.address, f.port) == ("172.30.0.42", 8080) and endpoints(f) == [("10.0.2.1", 8080, 1.0)]
    assert m.unmodelled == () and m.coverage == 1.0


@pytest.mark.parametrize("dataset", ("overall", "repeated-initial"))
def test_round_trips_model_the_same(dataset: str) -> None:
    """What kube-proxy wrote and what each backend printed back are the same Services."""
    written = load(dataset, DUMPS[0])
    for dump in DUMPS[1:]:
        assert load(dataset, dump).services == written.services
