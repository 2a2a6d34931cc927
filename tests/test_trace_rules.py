"""The tracers on small hand-written rule sets: jumps, gotos, returns, random branches,
marks, and constructs they cannot evaluate (which end as `unknown`, never as a guess)."""

from __future__ import annotations

import json

import pytest

from auditor.model import IPFamily
from auditor.parse.iptables_save import parse_iptables_save
from auditor.parse.nft_json import parse_nft_json
from auditor.trace import Hook, IptablesTracer, NftTracer, Packet, Verdict
from auditor.trace.packet import parse_destination
from tests.nft_build import DROP, Table, jump, match, meta, payload, ruleset

V4 = IPFamily.IPV4


def tracer(nat: str, filter_: str = "", local: tuple[str, ...] = ("192.168.0.2",)) -> IptablesTracer:
    text = "*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n" + nat + "COMMIT\n"
    text += "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n" + filter_ + "COMMIT\n"
    return IptablesTracer([parse_iptables_save(text, source="t")], local)


def packet(dst: str = "10.96.0.1", port: int = 80, src: str = "198.51.100.7") -> Packet:
    return Packet(V4, "tcp", src, dst, port, Hook.PREROUTING)


def test_random_branches_are_all_followed_with_their_probabilities() -> None:
    t = tracer(
        ":C - [0:0]\n:E1 - [0:0]\n:E2 - [0:0]\n:E3 - [0:0]\n"
        "-A PREROUTING -d 10.96.0.1/32 -p tcp -m tcp --dport 80 -j C\n"
        "-A C -m statistic --mode random --probability 0.33333333349 -j E1\n"
        "-A C -m statistic --mode random --probability 0.50000000000 -j E2\n"
        "-A C -j E3\n"
        "-A E1 -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:8080\n"
        "-A E2 -p tcp -m tcp -j DNAT --to-destination 10.0.0.2:8080\n"
        "-A E3 -p tcp -m tcp -j DNAT --to-destination 10.0.0.3:8080\n"
    )
    result = t.trace(packet())
    shares = result.endpoints()
    assert set(shares) == {("10.0.0.1", 8080), ("10.0.0.2", 8080), ("10.0.0.3", 8080)}
    assert all(abs(p - 1 / 3) < 1e-6 for p in shares.values())
    assert abs(sum(b.probability for b in result.branches) - 1.0) < 1e-9


def test_goto_returns_to_the_caller_of_the_chain_that_jumped() -> None:
    t = tracer(
        ":A - [0:0]\n:B - [0:0]\n"
        "-A PREROUTING -j A\n"
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.9:80\n"
        "-A A -g B\n"
        "-A A -j DNAT --to-destination 10.0.0.1:80\n"
        "-A B -j RETURN\n"
    )
    result = t.trace(packet())
    assert result.endpoints() == {("10.0.0.9", 80): 1.0}


def test_marks_lead_to_masquerade_and_filter_sees_the_rewritten_destination() -> None:
    t = tracer(
        ":MASQ - [0:0]\n"
        "-A PREROUTING -j MASQ\n"
        "-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:80\n"
        "-A MASQ -j MARK --set-xmark 0x4000/0x4000\n"
        "-A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE\n",
        "-A FORWARD -d 10.0.0.1/32 -m conntrack --ctstate DNAT -j DROP\n",
    )
    result = t.trace(packet())
    assert result.verdicts() == {Verdict.DROP}
    assert result.branches[0].deciding is not None and "DROP" in result.branches[0].deciding.rule


def test_an_unknown_match_makes_the_outcome_unknown_with_the_rule() -> None:
    t = tracer("-A PREROUTING -p tcp -m tcp --dport 80 -m time --timestart 09:00 -j DNAT --to-destination 10.0.0.1:80\n")
    result = t.trace(packet())
    assert result.verdicts() == {Verdict.UNKNOWN}
    assert "time" in result.branches[0].reason


def test_an_unknown_match_on_a_rule_that_fails_anyway_is_skipped() -> None:
    t = tracer("-A PREROUTING -p tcp -m tcp --dport 81 -m time --timestart 09:00 -j DROP\n")
    assert t.trace(packet()).verdicts() == {Verdict.ACCEPT}


def test_recent_rcheck_does_not_match_a_first_packet_and_affinity_is_noted() -> None:
    t = tracer(
        ":E - [0:0]\n"
        "-A PREROUTING -m recent --rcheck --seconds 60 --reap --name E --mask 255.255.255.255 --rsource -j DROP\n"
        "-A PREROUTING -j E\n"
        "-A E -p tcp -m recent --set --name E --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.0.0.1:80\n"
    )
    result = t.trace(packet())
    assert result.endpoints() == {("10.0.0.1", 80): 1.0}
    assert result.branches[0].affinity_seconds == 60


def test_addrtype_local_uses_the_node_addresses() -> None:
    t = tracer("-A PREROUTING -m addrtype --dst-type LOCAL -j DNAT --to-destination 10.0.0.1:80\n")
    assert t.trace(packet("192.168.0.2")).verdicts() == {Verdict.DNAT}
    assert t.trace(packet("192.168.7.7")).verdicts() == {Verdict.ACCEPT}


def test_parse_destination() -> None:
    assert parse_destination("10.0.0.1:80") == ("10.0.0.1", 80, "tcp")
    assert parse_destination("[fd00::01]:53/udp") == ("fd00::1", 53, "udp")


def _nft(*tables: Table) -> NftTracer:
    return NftTracer(parse_nft_json(ruleset(*tables), "t"), ("192.168.0.2",))


def test_nft_every_table_on_the_hook_runs_and_accept_ends_only_its_table() -> None:
    a = Table("inet", "first").chain("in", "input", prio=-10).rule("in", {"accept": None})
    b = Table("ip", "second").chain("in", "input", prio=0).rule("in", match(meta("l4proto"), "tcp"), DROP)
    result = _nft(a, b).trace(packet("192.168.0.2"))
    assert result.verdicts() == {Verdict.DROP}
    assert result.branches[0].deciding is not None and result.branches[0].deciding.table == "ip second"


def test_nft_unknown_expression_is_unknown() -> None:
    t = Table("ip", "fw").chain("in", "input").chain("x")
    t.rule("in", match(payload("ip", "daddr"), "192.168.0.2"), jump("x"))
    t.rule("x", {"limit": {"rate": 10, "per": "second"}}, DROP)
    result = _nft(t).trace(packet("192.168.0.2"))
    assert result.verdicts() == {Verdict.UNKNOWN}
    assert "limit" in result.branches[0].reason


def test_nft_iptables_nft_tables_are_left_to_the_iptables_tracer() -> None:
    t = Table("ip", "filter").chain("INPUT", "input").rule("INPUT", {"xt": {"type": "match", "name": "comment"}}, DROP)
    result = _nft(t).trace(packet("192.168.0.2"))
    assert result.verdicts() == {Verdict.ACCEPT}
    assert any("ip filter" in n for n in result.notes)


def test_nft_numgen_and_concatenated_map_lookup() -> None:
    doc = json.loads(ruleset(Table("ip", "kp").chain("pre", "prerouting", type="nat", prio=-100).chain("svc")))
    items = doc["nftables"]
    items.append({"map": {"family": "ip", "table": "kp", "name": "m", "handle": 9, "type": ["ipv4_addr", "inet_proto", "inet_service"], "map": "verdict",
                          "elem": [[{"concat": [{"prefix": {"addr": "10.96.0.0", "len": 16}}, "tcp", {"range": [70, 90]}]}, {"goto": {"target": "svc"}}]]}})
    key = {"concat": [payload("ip", "daddr"), meta("l4proto"), payload("th", "dport")]}
    items.append({"rule": {"family": "ip", "table": "kp", "chain": "pre", "handle": 20, "expr": [{"vmap": {"key": key, "data": "@m"}}]}})
    numgen = {"vmap": {"key": {"numgen": {"mode": "random", "mod": 4, "offset": 0}},
                       "data": {"set": [[0, {"accept": None}], [1, {"accept": None}], [2, {"drop": None}], [3, {"drop": None}]]}}}
    items.append({"rule": {"family": "ip", "table": "kp", "chain": "svc", "handle": 21, "expr": [numgen]}})
    t = NftTracer(parse_nft_json(json.dumps(doc), "t"), ())
    result = t.trace(packet())
    assert result.distribution() == pytest.approx({"accept (forward)": 0.5, "drop": 0.5})
    assert t.trace(packet(port=443)).verdicts() == {Verdict.ACCEPT}
