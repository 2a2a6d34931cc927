"""The `nft -j list ruleset` reader: envelope first, every bad input one `InputError`, element shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.errors import InputError
from auditor.parse.nft_json import (
    Concat,
    NftFamily,
    Opaque,
    Prefix,
    Range,
    Verdict,
    decode_value,
    element_text,
    parse_nft_json,
    read_nft_json,
    rule_text,
)
from tests.helpers import reference

META = {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}
TABLE = {"table": {"family": "ip", "name": "kube-proxy", "handle": 1}}


def doc(*objects: object, meta: object = META) -> str:
    return json.dumps({"nftables": [meta, *objects]})


# (id, input, substring of the message, line or None)
BAD_INPUTS = [
    ("empty", "", "empty input", None),
    ("blank", "  \n\t\n", "empty input", None),
    ("invalid-json", '{"nftables": [\n  {"metainfo": }\n]}', "invalid JSON", 2),
    ("truncated", doc(TABLE)[:-7], "invalid JSON", 1),
    ("binary-garbage", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary data", 3),
    ("not-utf8", b'{"nftables": ["\xff\xfe"]}', "not UTF-8", 1),
    ("top-level-list", "[1, 2]", "top level is an array", None),
    ("no-nftables-key", '{"rules": []}', 'no "nftables" key', None),
    ("nftables-not-array", '{"nftables": {"metainfo": {}}}', '"nftables" is an object', None),
    ("no-metainfo", json.dumps({"nftables": [TABLE]}), 'no "metainfo"', None),
    ("empty-array", '{"nftables": []}', 'no "metainfo"', None),
    ("no-schema-version", doc(meta={"metainfo": {"version": "0.9.0"}}), "no json_schema_version", None),
    (
        "schema-version-2",
        doc(meta={"metainfo": {"version": "9.9", "json_schema_version": 2}}),
        "newer than the supported 1",
        None,
    ),
    ("schema-version-text", doc(meta={"metainfo": {"json_schema_version": "1"}}), "expected an integer", None),
    ("object-two-keys", doc({"table": TABLE["table"], "chain": {}}), "nftables[1] is not an object with one key", None),
    ("object-not-dict", doc("table"), "nftables[1] is not an object with one key", None),
    ("table-no-name", doc({"table": {"family": "ip", "handle": 1}}), "nftables[1] (table) has no 'name'", None),
    ("table-bad-family", doc({"table": {"family": "ipx", "name": "t", "handle": 1}}), "unknown family 'ipx'", None),
    (
        "handle-is-text",
        doc({"table": {"family": "ip", "name": "t", "handle": "1"}}),
        "'handle' is a string, expected an integer",
        None,
    ),
    ("handle-is-bool", doc({"table": {"family": "ip", "name": "t", "handle": True}}), "'handle' is a boolean", None),
    (
        "chain-before-table",
        doc({"chain": {"family": "ip", "table": "kube-proxy", "name": "c", "handle": 2}}),
        "belongs to table ip kube-proxy, which is not listed before it",
        None,
    ),
    (
        "rule-without-expr",
        doc(
            TABLE,
            {"chain": {"family": "ip", "table": "kube-proxy", "name": "c", "handle": 2}},
            {"rule": {"family": "ip", "table": "kube-proxy", "chain": "c", "handle": 3}},
        ),
        "nftables[3] (rule) has no 'expr'",
        None,
    ),
    (
        "rule-in-unknown-chain",
        doc(TABLE, {"rule": {"family": "ip", "table": "kube-proxy", "chain": "nope", "handle": 3, "expr": []}}),
        "rule handle 3 is in chain 'nope' of table ip kube-proxy, which is not listed",
        None,
    ),
    (
        "map-element-not-pair",
        doc(
            TABLE,
            {
                "map": {
                    "family": "ip",
                    "name": "m",
                    "table": "kube-proxy",
                    "type": "inet_service",
                    "handle": 2,
                    "map": "verdict",
                    "elem": ["80"],
                }
            },
        ),
        "map element that is not a [key, value] pair",
        None,
    ),
    (
        "set-elem-not-array",
        doc(
            TABLE,
            {
                "set": {
                    "family": "ip",
                    "name": "s",
                    "table": "kube-proxy",
                    "type": "ipv4_addr",
                    "handle": 2,
                    "elem": "x",
                }
            },
        ),
        "'elem' is a string, expected an array",
        None,
    ),
]


@pytest.mark.parametrize(("data", "message", "line"), [pytest.param(d, m, n, id=i) for i, d, m, n in BAD_INPUTS])
def test_bad_input_is_one_input_error(data: str | bytes, message: str, line: int | None) -> None:
    with pytest.raises(InputError) as info:
        parse_nft_json(data, "ruleset.json")
    error = info.value
    assert message in str(error)
    assert str(error).startswith("ruleset.json")
    assert "\n" not in str(error)
    assert error.line == line
    if line is not None:
        assert str(error).startswith(f"ruleset.json:{line}: ")


def test_invalid_json_names_line_and_column() -> None:
    with pytest.raises(InputError) as info:
        parse_nft_json('{"nftables": [\n  {"metainfo": {"json_schema_version": 1}},\n  {"table": ,}\n]}', "f.json")
    assert str(info.value).startswith("f.json:3: invalid JSON:")
    assert "(column 13)" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(InputError) as info:
        read_nft_json(str(path))
    assert str(info.value) == f"{path}: No such file or directory"


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        read_nft_json(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    stream = io.TextIOWrapper(io.BytesIO(doc(TABLE).encode()))
    monkeypatch.setattr(sys, "stdin", stream)
    ruleset = read_nft_json("-")
    assert ruleset.source == "-" and ruleset.table("ip", "kube-proxy") is not None


def test_empty_ruleset_is_valid() -> None:
    ruleset = parse_nft_json(doc(), "empty.json")
    assert ruleset.tables == () and ruleset.schema_version == 1 and ruleset.nft_version == "1.0.6"


def test_reference_ruleset_structure() -> None:
    ruleset = read_nft_json(str(reference("overall.nft.json")))
    table = ruleset.table("ip", "kube-proxy")
    assert table is not None and table.family is NftFamily.IP
    assert len(table.chains) == 32 and table.rule_count == 57
    prerouting = table.chains["nat-prerouting"]
    assert (prerouting.type, prerouting.hook, prerouting.prio, prerouting.policy) == (
        "nat",
        "prerouting",
        -100,
        "accept",
    )
    assert prerouting.is_base and not table.chains["services"].is_base
    assert [r.handle for r in table.chains["services"].rules] == [61, 62]
    service_ips = table.sets["service-ips"]
    assert service_ips.is_map and service_ips.map_type == "verdict"
    assert service_ips.key_type == ("ipv4_addr", "inet_proto", "inet_service")
    assert len(service_ips.elements) == 9
    affinity = table.sets["affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"]
    assert (affinity.timeout, affinity.size, affinity.flags, affinity.is_map) == (10800, 65535, ("timeout",), False)
    no_endpoints = table.sets["no-endpoint-services"]
    assert [(element_text(e)) for e in no_endpoints.elements][-1] == (
        '172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain'
    )


def test_other_tables_are_kept() -> None:
    ruleset = read_nft_json(str(reference("overall.iptables-nft-backend.nft.json")))
    assert [t.label for t in ruleset.tables] == ["ip filter", "ip nat"]
    nat = ruleset.table("ip", "nat")
    assert nat is not None and "KUBE-SERVICES" in nat.chains
    # xt matches are kept verbatim in the expression list
    assert any("xt" in e for r in nat.chains["KUBE-SERVICES"].rules for e in r.expr)


@pytest.mark.parametrize(
    ("raw", "value", "text"),
    [
        ("172.30.0.41", "172.30.0.41", "172.30.0.41"),
        (80, 80, "80"),
        ({"concat": ["1.2.3.4", "tcp", 80]}, Concat(("1.2.3.4", "tcp", 80)), "1.2.3.4 . tcp . 80"),
        ({"prefix": {"addr": "10.0.0.0", "len": 8}}, Prefix("10.0.0.0", 8), "10.0.0.0/8"),
        ({"range": [1000, 2000]}, Range(1000, 2000), "1000-2000"),
        ({"range": ["10.0.0.1", "10.0.0.9"]}, Range("10.0.0.1", "10.0.0.9"), "10.0.0.1-10.0.0.9"),
        ({"goto": {"target": "reject-chain"}}, Verdict("goto", "reject-chain"), "goto reject-chain"),
        ({"jump": {"target": "x"}}, Verdict("jump", "x"), "jump x"),
        ({"drop": None}, Verdict("drop"), "drop"),
        ({"accept": None}, Verdict("accept"), "accept"),
        (
            {"concat": ["fd00::1", "udp", {"prefix": {"addr": "fd00::", "len": 64}}]},
            Concat(("fd00::1", "udp", Prefix("fd00::", 64))),
            "fd00::1 . udp . fd00::/64",
        ),
    ],
)
def test_element_values(raw: object, value: object, text: str) -> None:
    decoded = decode_value(raw)
    assert decoded == value
    assert str(decoded) == text


def test_unknown_value_shape_is_kept_opaque() -> None:
    decoded = decode_value({"symbol": "x"})
    assert isinstance(decoded, Opaque) and decoded.data == {"symbol": "x"} and str(decoded) == '{"symbol":"x"}'
    assert isinstance(decode_value(True), Opaque)


def test_set_and_map_elements_with_comments_and_timeouts() -> None:
    ruleset = parse_nft_json(
        doc(
            {"table": {"family": "ip6", "name": "kube-proxy", "handle": 1}},
            {
                "set": {
                    "family": "ip6",
                    "name": "nodeport-ips",
                    "table": "kube-proxy",
                    "type": "ipv6_addr",
                    "handle": 1,
                    "elem": [{"elem": {"val": "2001:db8::1", "comment": "test comment"}}, "2001:db8:1::2"],
                }
            },
            {
                "set": {
                    "family": "ip6",
                    "name": "affinity-x",
                    "table": "kube-proxy",
                    "type": "ipv6_addr",
                    "handle": 2,
                    "flags": "timeout",
                    "timeout": 60,
                    "elem": [{"elem": {"val": "fd00::9", "timeout": 60, "expires": 41}}],
                }
            },
            {
                "map": {
                    "family": "ip6",
                    "name": "service-nodeports",
                    "table": "kube-proxy",
                    "type": ["inet_proto", "inet_service"],
                    "handle": 3,
                    "map": "verdict",
                    "elem": [
                        [
                            {"elem": {"val": {"concat": ["sctp", 3001]}, "comment": "ns/svc"}},
                            {"goto": {"target": "external-X"}},
                        ],
                        [{"concat": ["udp", 3002]}, {"drop": None}],
                    ],
                }
            },
            {"counter": {"family": "ip6", "name": "c1", "table": "kube-proxy", "handle": 4, "packets": 0, "bytes": 0}},
            {"element": {"family": "ip6", "table": "kube-proxy", "name": "nodeport-ips", "elem": ["2001:db8::7"]}},
        ),
        "x.json",
    )
    table = ruleset.table("ip6", "kube-proxy")
    assert table is not None
    ips = table.sets["nodeport-ips"].elements
    assert [(e.key, e.comment) for e in ips] == [
        ("2001:db8::1", "test comment"),
        ("2001:db8:1::2", None),
        ("2001:db8::7", None),
    ]
    (sticky,) = table.sets["affinity-x"].elements
    assert (sticky.key, sticky.timeout, sticky.expires) == ("fd00::9", 60, 41)
    assert table.sets["affinity-x"].flags == ("timeout",)
    first, second = table.sets["service-nodeports"].elements
    assert (first.key, first.value, first.comment) == (Concat(("sctp", 3001)), Verdict("goto", "external-X"), "ns/svc")
    assert (second.key, second.value, second.comment) == (Concat(("udp", 3002)), Verdict("drop"), None)
    assert element_text(first) == 'sctp . 3001 comment "ns/svc" : goto external-X'
    assert [o.kind for o in table.objects] == ["counter"]


def test_rule_text_reads_like_nft() -> None:
    ruleset = read_nft_json(str(reference("overall.nft.json")))
    table = ruleset.table("ip", "kube-proxy")
    assert table is not None
    texts = {r.handle: rule_text(r) for chain in table.chains.values() for r in chain.rules}
    assert texts[64] == "ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade"
    assert texts[43] == "ct state new jump firewall-check"
    assert texts[62] == "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    assert texts[53] == "meta mark & 16384 == 0 return"
    assert texts[72] == 'ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"'
    assert texts[100] == "update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }"
    assert texts[101] == "meta l4proto tcp dnat to 10.180.0.3:80"
    assert texts[86].startswith(
        "numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80, 1 : goto"
    )


def test_gc_is_restored() -> None:
    import gc

    assert gc.isenabled()
    parse_nft_json(doc(TABLE), "x")
    assert gc.isenabled()
    with pytest.raises(InputError):
        parse_nft_json("{", "x")
    assert gc.isenabled()
