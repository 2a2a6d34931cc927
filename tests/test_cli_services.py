"""`kp-audit services`: the JSON contract, the table, and bad input as one line + exit 3."""

from __future__ import annotations

import json

import pytest

from auditor.model import IPFamily
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from tests.cli import run_cli
from tests.helpers import reference


def test_json_contract_on_reference(capsys) -> None:
    path = str(reference("overall.iptables-save.roundtrip-nft.txt"))
    code, out, err = run_cli(capsys, "services", "--iptables-save", path, "--format", "json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["schema"] == "kp-audit.services/v1" and doc["mode"] == "iptables"
    assert doc["node_port_addresses"] == ["local"]
    svc = doc["services"][0]
    assert set(svc) >= {"name", "protocol", "family", "frontends"}
    assert set(svc["frontends"][0]) >= {
        "kind",
        "address",
        "port",
        "result",
        "endpoints",
        "affinity_seconds",
        "source_ranges",
        "local_only",
    }
    assert svc["frontends"][0]["endpoints"] == [{"address": "10.180.0.1", "port": 80, "probability": 1.0}]
    assert doc["unmodelled"] == []
    # the same input twice gives byte-identical output
    assert run_cli(capsys, "services", "--iptables-save", path, "--format", "json")[1] == out


def test_dual_stack_files_and_sorting(tmp_path, capsys) -> None:
    node = generate_node(12, 2, families=(IPFamily.IPV4, IPFamily.IPV6))
    v4, v6 = tmp_path / "v4.txt", tmp_path / "v6.txt"
    v4.write_text(render_iptables(node, IPFamily.IPV4))
    v6.write_text(render_iptables(node, IPFamily.IPV6))
    code, out, _ = run_cli(capsys, "services", "--iptables-save", str(v4), "--ip6tables-save", str(v6), "-f", "json")
    assert code == 0
    doc = json.loads(out)
    keys = [(s["name"], s["protocol"], s["family"]) for s in doc["services"]]
    assert keys == sorted(keys) and {k[2] for k in keys} == {"ipv4", "ipv6"}
    for svc in doc["services"]:
        kinds = [(f["kind"], f["port"]) for f in svc["frontends"]]
        assert [k for k, _ in kinds] == sorted(k for k, _ in kinds)


def test_table_format(capsys) -> None:
    code, out, _ = run_cli(capsys, "services", "--iptables-save", str(reference("overall.iptables-save.txt")))
    assert code == 0 and "ns6/svc6:p80" in out and "reject" in out and "Rules modelled: 65/65" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "{path}:1: no tables"),
        (b"*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\n", "{path}:3: table nat (line 1) has no COMMIT"),
        (b"*nat\n:A - [0:0]\nthis is not a rule\nCOMMIT\n", "{path}:3: not iptables-save syntax"),
        (b"\x00\x01\x02binary", "{path}: binary data"),
    ],
    ids=["empty", "cut-mid-table", "garbage-line", "binary"],
)
def test_bad_input_one_line_exit_3(tmp_path, capsys, content: bytes, expected: str) -> None:
    path = tmp_path / "dump.txt"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, "services", "--iptables-save", str(path))
    assert code == 3 and out == ""
    assert err.startswith("kp-audit: error: " + expected.format(path=path))
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_file(capsys) -> None:
    code, _, err = run_cli(capsys, "services", "--iptables-save", "/nonexistent.txt")
    assert code == 3 and err == "kp-audit: error: /nonexistent.txt: No such file or directory\n"


def test_no_input_is_a_usage_error(capsys) -> None:
    code, _, err = run_cli(capsys, "services")
    assert code == 3 and "give SNAPSHOT, or --iptables-save" in err
