"""`kp-audit diff --predict SNAPSHOT` and one snapshot holding both modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from auditor.collect.facts import Address, HostFacts, KubeProxyFacts
from auditor.collect.snapshot import SnapshotMeta, write_snapshot
from auditor.collect.sources import SourceRecord
from auditor.diff import DifferenceKind, predict_nftables
from auditor.model import IPFamily
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from tests.cli import run_cli
from tests.diffcases import iptables_side
from tests.helpers import reference

NODE = generate_node(12, 2)
ADDRESSES = (
    Address("lo", "127.0.0.1", 8, "inet", "host"),
    Address("eth0", "192.168.5.10", 24, "inet", "global"),
    Address("eth1", "10.1.2.3", 24, "inet", "global"),
)


def host(config: dict[str, object] | None = None) -> HostFacts:
    kp = KubeProxyFacts(running=True, mode="iptables", mode_source="config", config=config, config_source="file:/c" if config else None)
    return HostFacts(addresses=ADDRESSES, kube_proxy=kp)


def test_prediction_names_the_addresses_that_stop_answering() -> None:
    side = iptables_side(NODE)
    found = predict_nftables(side.model, host(), side.tracer)
    assert all(d.is_expected for d in found)
    (nodeports,) = [d for d in found if d.kind is DifferenceKind.NODE_PORT_ADDRESSES]
    assert nodeports.message.startswith("NodePort 30001 (and 5 more) on 127.0.0.1 and 10.1.2.3 stops answering")
    assert "192.168.5.10 keeps answering" in nodeports.message
    assert nodeports.packet is not None and nodeports.left_rule is not None
    kinds = {d.expected for d in found}
    assert kinds == {"node-port-addresses", "localhost-node-ports", "health-check-accept", "cluster-ips-check"}


def test_prediction_follows_node_port_addresses() -> None:
    side = iptables_side(NODE)
    found = predict_nftables(side.model, host({"nodePortAddresses": ["10.1.2.0/24", "192.168.5.0/24"]}))
    (nodeports,) = [d for d in found if d.kind is DifferenceKind.NODE_PORT_ADDRESSES]
    assert "on 127.0.0.1 stops answering" in nodeports.message and "10.1.2.3 and 192.168.5.10 keep" not in nodeports.message


def _snapshot(tmp_path: Path, files: dict[str, bytes]) -> str:
    sources = {
        "iptables-legacy-save": SourceRecord("iptables-legacy-save", ("iptables-legacy-save",), True, file="iptables-legacy-save.txt"),
        "nftables": SourceRecord("nftables", ("nft", "-j", "list", "ruleset"), True, file="nft-ruleset.json" if "nft-ruleset.json" in files else None),
    }
    meta = SnapshotMeta("kp-audit.snapshot/v1", "0", "2026-01-01T00:00:00Z", "node", sources)
    path = tmp_path / "snap"
    write_snapshot(path, meta, host(), files)
    return str(path)


def test_cli_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _snapshot(tmp_path, {"iptables-legacy-save.txt": render_iptables(NODE, IPFamily.IPV4).encode()})
    code, out, err = run_cli(capsys, "diff", "--predict", path, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["right"]["mode"] == "nftables" and doc["summary"]["unexpected"] == 0
    assert any("stops answering" in d["message"] for d in doc["differences"])


def test_cli_one_snapshot_with_both_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {
        "iptables-legacy-save.txt": reference("overall.iptables-save.roundtrip-legacy.txt").read_bytes(),
        "nft-ruleset.json": reference("overall.nft.json").read_bytes(),
    }
    path = _snapshot(tmp_path, files)
    code, out, err = run_cli(capsys, "diff", path, "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["left"]["mode"] == "iptables" and doc["right"]["mode"] == "nftables"
    assert doc["summary"]["unexpected"] == 0


def test_cli_one_snapshot_with_one_mode_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _snapshot(tmp_path, {"iptables-legacy-save.txt": render_iptables(NODE, IPFamily.IPV4).encode()})
    code, _, err = run_cli(capsys, "diff", path)
    assert code == 3 and "--predict" in err


def test_cli_unexpected_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text(render_iptables(NODE, IPFamily.IPV4))
    b.write_text(render_iptables(generate_node(11, 2), IPFamily.IPV4))
    code, out, _ = run_cli(capsys, "diff", "--left-iptables-save", str(a), "--right-iptables-save", str(b), "-f", "json")
    assert code == 2 and "service-only-left" in out
