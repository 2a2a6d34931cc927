"""`kp-audit collect`: exit 0 with a one-line summary, exit 3 with one line per missing required source."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import auditor.cli.collect as cli_collect
from auditor.collect.collector import collect
from tests.cli import run_cli
from tests.fake_runner import NFT_RULESET, Expect, FakeRunner, make_node, node_commands


@pytest.fixture
def fake_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FakeRunner]]:
    """The CLI's collect runs against a fake node; set `runners[0]` before invoking."""
    root = make_node(tmp_path / "node")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runners: list[FakeRunner] = []

    def fake_collect(output: str, **options: Any) -> Any:
        options["probe"] = False  # the probe has its own tests (tests/test_probe.py)
        return collect(output, runner=runners[0], root=root, metrics_address=f"127.0.0.1:{port}", **options)

    monkeypatch.setattr(cli_collect, "collect_snapshot", fake_collect)
    yield runners
    for runner in runners:
        runner.assert_done()


def test_complete_exits_0_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list) -> None:
    fake_node.append(FakeRunner(node_commands()))
    out = tmp_path / "snap"
    code, stdout, err = run_cli(capsys, "collect", "-o", str(out))
    assert code == 0 and stdout == ""
    lines = err.splitlines()
    assert lines[0] == f"kp-audit: snapshot written to {out}: 14 sources ok, 0 failed, 1 absent"
    assert lines[1:] == []
    assert json.loads((out / "meta.json").read_text())["schema"] == "kp-audit.snapshot/v1"


def test_quiet_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list) -> None:
    fake_node.append(FakeRunner(node_commands()))
    assert run_cli(capsys, "collect", "-o", str(tmp_path / "s.tar.gz"), "--quiet") == (0, "", "")
    assert (tmp_path / "s.tar.gz").is_file()


def test_missing_nft_exits_3_and_still_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list
) -> None:
    fake_node.append(
        FakeRunner(
            node_commands(
                nft=Expect(NFT_RULESET, fault="missing"), nft_version=Expect(("nft", "--version"), fault="missing")
            )
        )
    )
    out = tmp_path / "snap"
    code, _, err = run_cli(capsys, "collect", "-o", str(out), "--quiet")
    assert code == 3
    assert (
        err == "kp-audit: error: nftables: `nft` not found on PATH; install the nftables package or pass --nft PATH\n"
    )
    assert (out / "meta.json").exists()


def test_incomplete_summary_and_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list) -> None:
    names = ("iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save")
    fake_node.append(
        FakeRunner(
            node_commands(
                saves={n: Expect((n,), fault="timeout" if n == "iptables-nft-save" else "missing") for n in names},
                addresses=Expect(("ip", "-j", "addr"), returncode=1, stderr=b"Cannot open netlink socket\n"),
            )
        )
    )
    out = tmp_path / "snap"
    code, _, err = run_cli(capsys, "collect", "-o", str(out), "--timeout", "2")
    assert code == 3
    assert err.splitlines() == [
        f"kp-audit: snapshot written to {out} (INCOMPLETE): 9 sources ok, 2 failed (iptables-nft-save, addresses),"
        " 4 absent",
        "kp-audit: warning: addresses: exit status 1: Cannot open netlink socket",
        "kp-audit: error: iptables: no iptables backend could be read (iptables-nft-save: timed out after 2 s (killed);"
        " raise --timeout if the node is just slow)",
    ]


def test_existing_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list) -> None:
    (tmp_path / "snap").mkdir()
    (tmp_path / "snap" / "x").write_text("keep me")
    code, _, err = run_cli(capsys, "collect", "-o", str(tmp_path / "snap"))
    assert code == 3
    assert err == (
        f"kp-audit: error: {tmp_path}/snap: already exists and is not empty; give a new path"
        " (a snapshot is never overwritten)\n"
    )


def test_missing_kube_proxy_config(tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_node: list) -> None:
    code, _, err = run_cli(
        capsys, "collect", "-o", str(tmp_path / "s"), "--kube-proxy-config", str(tmp_path / "no.yaml")
    )
    assert (code, err) == (3, f"kp-audit: error: {tmp_path}/no.yaml: no such file (--kube-proxy-config)\n")
    assert not (tmp_path / "s").exists()


def test_output_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "collect")
    assert code == 3 and "--output" in err and "Traceback" not in err
