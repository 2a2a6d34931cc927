"""Rules outside the model are verified only on the frontends they can reach."""

from __future__ import annotations

from auditor.diff.compare import Side, _reach
from auditor.model import Frontend, FrontendKind, IPFamily, Result
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node


def side_with(*foreign: str) -> Side:
    text = render_iptables(generate_node(4, 1, variety=False), IPFamily.IPV4)
    head, nat = text.split("*nat\n", 1)
    declarations, rules = ":DOCKER - [0:0]\n", "".join(line + "\n" for line in foreign)
    body, tail = nat.split("COMMIT\n", 1)
    model = normalize_iptables([parse_iptables_save(f"{head}*nat\n{declarations}{body}{rules}COMMIT\n{tail}")])
    return Side("x", model)


def frontend(address: str | None, port: int) -> Frontend:
    kind = FrontendKind.NODE_PORT if address is None else FrontendKind.CLUSTER_IP
    return Frontend(kind, address, port, Result.DNAT)


def test_a_dnat_of_one_address_reaches_only_that_address() -> None:
    reach = _reach(side_with("-A PREROUTING -d 172.30.0.10/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.9.0.1:80"), ())
    assert reach is not None
    assert reach.touches(frontend("172.30.0.10", 80), ()) and not reach.touches(frontend("172.30.0.11", 80), ())


def test_a_jump_for_local_destinations_reaches_node_ports_not_cluster_ips() -> None:
    reach = _reach(side_with("-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER", "-A DOCKER -p tcp -j DNAT --to-destination 172.17.0.2:80"), ("192.168.0.2",))
    assert reach is not None
    assert reach.touches(frontend(None, 30001), ("192.168.0.2",))
    assert not reach.touches(frontend("172.30.0.10", 80), ("192.168.0.2",))


def test_an_unbounded_rule_means_every_frontend() -> None:
    assert _reach(side_with("-A PREROUTING -p tcp -j DOCKER"), ()) is None
