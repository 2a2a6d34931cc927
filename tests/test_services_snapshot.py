"""`kp-audit services SNAPSHOT [--mode]`: the model from a snapshot, and the argument rules."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from auditor.cli.services_snapshot import services_model_from_args, snapshot_services_model
from auditor.collect import collect
from auditor.collect.models import default_mode
from auditor.collect.snapshot import read_snapshot
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from tests.fake_runner import NFT_RULESET, Expect, FakeRunner, add_process, make_node, node_commands
from tests.helpers import reference
from tests.modelcmp import assert_same_services


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot_of(tmp_path: Path, *, kube_proxy_argv: list[str] | None = None, name: str = "snap") -> Path:
    ipt = reference("overall.iptables-save.roundtrip-nft.txt").read_bytes()
    commands = node_commands(
        saves={"iptables-nft-save": Expect(("iptables-nft-save",), ipt)},
        nft=Expect(NFT_RULESET, reference("overall.nft.json").read_bytes()),
    )
    root = make_node(tmp_path / f"node-{name}")
    if kube_proxy_argv:
        add_process(root, 10, kube_proxy_argv)
    collect(tmp_path / name, runner=FakeRunner(commands), root=root, metrics_address=f"127.0.0.1:{closed_port()}", probe=False)
    return tmp_path / name


def test_iptables_model_from_snapshot(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path)
    model = services_model_from_args(str(snap), None, False)
    assert model is not None and model.mode is ProxyMode.IPTABLES
    text = reference("overall.iptables-save.roundtrip-nft.txt").read_text()
    assert_same_services(model, normalize_iptables([parse_iptables_save(text)]))


def test_mode_option_and_kube_proxy_mode(tmp_path: Path) -> None:
    pytest.importorskip("auditor.normalize.nftables", reason="nftables normalizer not available yet")
    snap = snapshot_of(tmp_path, kube_proxy_argv=["kube-proxy", "--proxy-mode=nftables"])
    assert default_mode(read_snapshot(snap)) == (ProxyMode.NFTABLES, "kube-proxy runs in nftables mode (--proxy-mode)")
    assert snapshot_services_model(str(snap)).mode is ProxyMode.NFTABLES
    model = snapshot_services_model(str(snap), "iptables")
    assert model.mode is ProxyMode.IPTABLES and model.services


def test_ipvs_mode_needs_an_explicit_mode(tmp_path: Path) -> None:
    snap = snapshot_of(tmp_path, kube_proxy_argv=["kube-proxy", "--proxy-mode", "ipvs"])
    with pytest.raises(
        InputError, match="kube-proxy runs in 'ipvs' mode; kp-audit models iptables and nftables: pass --mode"
    ):
        snapshot_services_model(str(snap))
    assert snapshot_services_model(str(snap), ProxyMode.IPTABLES).services


def test_argument_rules(tmp_path: Path) -> None:
    assert services_model_from_args(None, None, True) is None  # files: the existing code path
    with pytest.raises(InputError, match=r"^kp-audit services: --mode applies to a SNAPSHOT"):
        services_model_from_args(None, "iptables", True)
    with pytest.raises(InputError, match=r"^kp-audit services: give a SNAPSHOT or"):
        services_model_from_args(str(tmp_path), None, True)
    with pytest.raises(InputError, match="no such snapshot"):
        services_model_from_args(str(tmp_path / "missing"), None, False)


def test_model_refuses_a_failed_source(tmp_path: Path) -> None:
    commands = node_commands(nft=Expect(NFT_RULESET, fault="missing"))
    root = make_node(tmp_path / "node")
    collect(tmp_path / "s", runner=FakeRunner(commands), root=root, metrics_address=f"127.0.0.1:{closed_port()}", probe=False)
    with pytest.raises(InputError) as info:
        snapshot_services_model(str(tmp_path / "s"), "nftables")
    assert str(info.value) == (
        f"{tmp_path}/s: the nftables state is missing from this snapshot: `nft` not found on PATH;"
        " install the nftables package or pass --nft PATH"
    )
