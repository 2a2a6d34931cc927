"""The fast readers agree with the parser on every rule they accept, and refuse near misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.model import IPFamily
from auditor.normalize.iptables_facts import (
    PROBABILITY,
    endpoint_of,
    endpoints_in_bulk,
    facts_from_rule,
    pick_of,
    read_facts,
)
from auditor.parse.iptables_save import parse_iptables_save, parse_rule
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from tests.helpers import REFERENCE

KUBE_PROXY_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "kube-proxy" / "iptables"


def _dumps():
    texts = {}
    if REFERENCE.exists():
        for path in sorted(REFERENCE.glob("*.iptables-save*.txt")):
            texts[path.name] = path.read_text()
    # kube-proxy's own test rulesets (tests/fixtures/kube-proxy/INDEX.md), v1.25 to v1.28 layouts and older
    # (those with endpoints: a ruleset without any gives the fast readers nothing to take)
    for path in sorted(KUBE_PROXY_FIXTURES.glob("*.txt")):
        if "KUBE-SEP-" in (text := path.read_text()):
            texts["kube-proxy/" + path.name.replace("ip6tables", "v6")] = text
    node = generate_node(24, 2, families=(IPFamily.IPV4, IPFamily.IPV6))
    texts["generated-v4"] = render_iptables(node, IPFamily.IPV4)
    texts["generated-v6"] = render_iptables(node, IPFamily.IPV6)
    texts["generated-large"] = render_iptables(generate_node(30, 40), IPFamily.IPV4)
    return texts


DUMPS = _dumps()


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_fast_facts_equal_parsed_facts(name: str) -> None:
    dump = parse_iptables_save(DUMPS[name], source=name, ipv6="v6" in name)
    fast_hits = 0
    for table in dump.tables.values():
        for chain in table.chains.values():
            prefix = (
                "SEP"
                if chain.name.startswith("KUBE-SEP-")
                else "SVC"
                if chain.name.startswith(("KUBE-SVC-", "KUBE-SVL-"))
                else ""
            )
            if chain.name == "KUBE-SERVICES" and table.name == "nat":
                prefix = "SERVICES"
            for line, text in chain.lines:
                slow = facts_from_rule(parse_rule(text, table.name, line, name))
                assert read_facts(text, line, table.name, name, prefix) == slow, text
                pick = pick_of(text)
                if pick is not None:
                    fast_hits += 1
                    assert (
                        slow.target == pick[1] and slow.conditions & ~PROBABILITY == 0 and slow.probability == pick[0]
                    )
            sep = endpoint_of(chain.texts)
            if sep is not None:
                fast_hits += 1
                facts = [facts_from_rule(parse_rule(t, table.name, ln, name)) for ln, t in chain.lines]
                assert facts[1].target == "DNAT" and facts[1].to_destination.endswith(f":{sep[1]}")
                assert sep[0] in facts[1].to_destination
    assert fast_hits > 0


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_endpoints_in_bulk_agree_with_endpoint_of(name: str) -> None:
    dump = parse_iptables_save(DUMPS[name], source=name, ipv6="v6" in name)
    for table in dump.tables.values():
        careful = {}
        for chain_name, chain in table.chains.items():
            destination = endpoint_of(chain.texts)
            if chain_name.startswith("KUBE-SEP-") and destination is not None:
                careful[chain_name] = destination
        assert endpoints_in_bulk(table.chains) == careful


def test_bulk_endpoint_reading_takes_the_careful_path_for_other_spellings() -> None:
    dump = parse_iptables_save(
        "*nat\n:KUBE-SEP-A - [0:0]\n:KUBE-SEP-B - [0:0]\n:KUBE-SEP-C - [0:0]\n"
        "-A KUBE-SEP-A -s 10.0.0.9/32 -j KUBE-MARK-MASQ\n"  # hairpin for another address: still kube-proxy's shape
        "-A KUBE-SEP-A -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80\n"
        '-A KUBE-SEP-B -m comment --comment "ns/b" -s 10.0.0.2 -j KUBE-MARK-MASQ\n'  # kube-proxy's spelling
        '-A KUBE-SEP-B -m comment --comment "ns/b" -m tcp -p tcp -j DNAT --to-destination 10.0.0.2:80\n'
        "-A KUBE-SEP-C -s 10.0.0.3/32 -j KUBE-MARK-MASQ\n"
        "-A KUBE-SEP-C -p tcp -m tcp -m mark --mark 0x1 -j DNAT --to-destination 10.0.0.3:80\n"
        "COMMIT\n"
    )
    assert endpoints_in_bulk(dump.tables["nat"].chains) == {"KUBE-SEP-A": ("10.0.0.1", 80), "KUBE-SEP-B": ("10.0.0.2", 80)}


@pytest.mark.parametrize(
    "text",
    [
        "-A KUBE-SVC-X -m statistic --mode random --probability 0.5 -m mark --mark 0x1 -j KUBE-SEP-Y",
        "-A KUBE-SVC-X -s 10.0.0.0/8 -j KUBE-SEP-Y",
        "-A KUBE-SVC-X -m statistic --mode nth --every 2 -j KUBE-SEP-Y",
        "-A KUBE-SVC-X -m comment --comment a -j KUBE-SEP-Y --extra",
    ],
)
def test_near_misses_are_not_picks(text: str) -> None:
    assert pick_of(text) is None
    facts = facts_from_rule(parse_rule(text))
    assert facts.conditions & ~PROBABILITY != 0 or facts.unknown or facts.target_args


def test_endpoint_chain_with_an_extra_rule_is_not_fast() -> None:
    lines = [
        (1, "-A KUBE-SEP-X -s 10.0.0.1/32 -j KUBE-MARK-MASQ"),
        (2, "-A KUBE-SEP-X -p tcp -m tcp -m mark --mark 0x1 -j DNAT --to-destination 10.0.0.1:80"),
    ]
    assert endpoint_of([text for _, text in lines]) is None
    assert endpoint_of([lines[0][1], "-A KUBE-SEP-X -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80"]) == (
        "10.0.0.1",
        80,
    )
