"""`collect` against a fake runner and a fake node: every source, every fault, recorded honestly."""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auditor.collect import collect, read_snapshot
from auditor.collect.models import snapshot_model
from auditor.collect.runner import SubprocessRunner
from auditor.collect.snapshot import Snapshot
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from tests.fake_runner import (
    IPTABLES_SAVES,
    NFT_RULESET,
    Expect,
    FakeRunner,
    add_process,
    make_node,
    node_commands,
)
from tests.helpers import reference
from tests.modelcmp import assert_same_services


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def run_collect(tmp_path: Path, runner: FakeRunner, port: int, **options: Any) -> tuple[Snapshot, Path]:
    root = options.pop("root", None) or make_node(tmp_path / "node")
    out = tmp_path / "snap"
    options.setdefault("probe", False)  # the probe has its own tests (tests/test_probe.py)
    snapshot = collect(out, runner=runner, root=root, metrics_address=f"127.0.0.1:{port}", **options)
    runner.assert_done()
    return snapshot, out


def meta(out: Path) -> dict:
    return json.loads((out / "meta.json").read_text())


def test_complete_node_is_recorded_and_models_like_the_dumps(tmp_path: Path, closed_port: int) -> None:
    ipt = reference("overall.iptables-save.roundtrip-legacy.txt").read_bytes()
    nft_json = reference("overall.nft.json").read_bytes()
    runner = FakeRunner(
        node_commands(
            saves={"iptables-legacy-save": Expect(("iptables-legacy-save",), ipt)},
            nft=Expect(NFT_RULESET, nft_json),
        )
    )
    snapshot, out = run_collect(tmp_path, runner, closed_port)
    assert snapshot.complete and snapshot.incomplete_reasons() == []
    doc = meta(out)
    assert doc["schema"] == "kp-audit.snapshot/v1" and doc["hostname"] == "node-a"
    assert doc["created"].endswith("Z") and "T" in doc["created"]
    for name in (*IPTABLES_SAVES, "nftables"):
        src = doc["sources"][name]
        assert src["ok"] is True and src["error"] is None and isinstance(src["seconds"], float)
        assert src["command"][0] in (name, "nft")
    assert (out / "iptables-legacy-save.txt").read_bytes() == ipt
    assert (out / "nft-ruleset.json").read_bytes() == nft_json
    host = json.loads((out / "host.json").read_text())
    assert host["kernel_release"] == "6.1.0-21-amd64"
    assert host["os_release"]["ID"] == "debian"
    assert (host["nft_version"], host["iptables_version"], host["iptables_backend"]) == ("1.0.6", "1.8.9", "nf_tables")
    assert host["sysctls"]["net.ipv4.conf.all.route_localnet"] == 1
    assert host["sysctls"]["net.bridge.bridge-nf-call-iptables"] is None  # missing: recorded as null
    assert host["modules"] == {"loaded": ["nf_tables", "ip_tables"], "builtin": ["x_tables", "nf_nat"]}
    assert {"interface": "eth0", "address": "2001:db8::2", "prefix": 64}.items() <= host["addresses"][2].items()
    assert host["kube_proxy"]["running"] is False
    # the snapshot reads back and models like the dump itself
    back = read_snapshot(out)
    assert back.meta == snapshot.meta and back.host == snapshot.host
    model = snapshot_model(back, ProxyMode.IPTABLES)
    assert_same_services(model, normalize_iptables([parse_iptables_save(ipt)]))
    assert snapshot_model(back).mode is ProxyMode.IPTABLES  # no kube-proxy: the iptables state holds its rules


def test_missing_nft_binary(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(
        node_commands(
            nft=Expect(NFT_RULESET, fault="missing"), nft_version=Expect(("nft", "--version"), fault="missing")
        )
    )
    snapshot, out = run_collect(tmp_path, runner, closed_port)
    src = meta(out)["sources"]["nftables"]
    assert src["ok"] is False and src["file"] is None
    assert src["error"] == "`nft` not found on PATH; install the nftables package or pass --nft PATH"
    assert snapshot.incomplete_reasons() == [
        "nftables: `nft` not found on PATH; install the nftables package or pass --nft PATH"
    ]
    assert meta(out)["sources"]["nft-version"]["absent"] is True
    assert not (out / "nft-ruleset.json").exists()


def test_nft_path_option_is_used(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(
        node_commands(
            nft=Expect(("/opt/nft", "-j", "list", "ruleset"), b'{"nftables": []}'),
            nft_version=Expect(("/opt/nft", "--version"), b"nftables v1.1.1 (Commodore Bullmoose #2)\n"),
        )
    )
    snapshot, _ = run_collect(tmp_path, runner, closed_port, nft="/opt/nft")
    assert snapshot.complete and snapshot.host.nft_version == "1.1.1"


def test_no_iptables_binaries(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(
        node_commands(
            saves={name: Expect((name,), fault="missing") for name in IPTABLES_SAVES},
            iptables_version=Expect(("iptables", "--version"), fault="missing"),
        )
    )
    snapshot, out = run_collect(tmp_path, runner, closed_port)
    sources = meta(out)["sources"]
    for name in IPTABLES_SAVES:
        assert sources[name]["absent"] is True and sources[name]["ok"] is False
        assert sources[name]["error"] == f"`{name}` not found on PATH"
    assert snapshot.incomplete_reasons() == [
        "iptables: no iptables-save binary found (iptables-legacy-save, iptables-nft-save, ip6tables-legacy-save,"
        " ip6tables-nft-save); install the iptables package"
    ]


def test_one_absent_backend_is_not_a_failure(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(
        node_commands(saves={n: Expect((n,), fault="missing") for n in IPTABLES_SAVES if "legacy" in n})
    )
    snapshot, _ = run_collect(tmp_path, runner, closed_port)
    assert snapshot.complete and snapshot.failed_sources() == []


def test_hanging_save_times_out(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(
        node_commands(
            saves={
                "iptables-legacy-save": Expect(("iptables-legacy-save",), fault="timeout"),
                "iptables-nft-save": Expect(("iptables-nft-save",), fault="missing"),
                "ip6tables-legacy-save": Expect(("ip6tables-legacy-save",)),
                "ip6tables-nft-save": Expect(("ip6tables-nft-save",), fault="missing"),
            }
        )
    )
    snapshot, out = run_collect(tmp_path, runner, closed_port, timeout=7)
    error = "timed out after 7 s (killed); raise --timeout if the node is just slow"
    assert meta(out)["sources"]["iptables-legacy-save"]["error"] == error
    assert snapshot.incomplete_reasons() == [
        f"iptables: no iptables backend could be read (iptables-legacy-save: {error})"
    ]
    assert not (out / "iptables-legacy-save.txt").exists()


def test_real_runner_kills_a_hanging_command() -> None:
    start = time.monotonic()
    result = SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(30)"], 0.3)
    assert time.monotonic() - start < 5
    assert result.error == "timed out after 0.3 s (killed)" and result.failure == "timeout"


def test_real_runner_faults(tmp_path: Path) -> None:
    runner = SubprocessRunner()
    assert runner.run(["kp-audit-no-such-tool"], 1).error == "`kp-audit-no-such-tool` not found on PATH"
    script = tmp_path / "tool"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)  # not executable
    assert runner.run([str(script)], 1).error == f"permission denied executing `{script}`"
    script.chmod(0o755)
    assert runner.run([str(script)], 1).stdout == b"hi\n"


def test_permission_denied(tmp_path: Path, closed_port: int) -> None:
    denied = b"iptables-legacy-save v1.8.9 (legacy): Cannot initialize: Permission denied (you must be root)\n"
    runner = FakeRunner(
        node_commands(
            saves={
                "iptables-legacy-save": Expect(("iptables-legacy-save",), returncode=1, stderr=denied),
                "iptables-nft-save": Expect(("iptables-nft-save",), fault="denied"),
                "ip6tables-legacy-save": Expect(("ip6tables-legacy-save",), fault="missing"),
                "ip6tables-nft-save": Expect(("ip6tables-nft-save",), fault="missing"),
            },
            nft=Expect(
                NFT_RULESET,
                returncode=1,
                stderr=b"netlink: Error: cache initialization failed: Operation not permitted\n",
            ),
        )
    )
    snapshot, out = run_collect(tmp_path, runner, closed_port)
    sources = meta(out)["sources"]
    assert sources["iptables-legacy-save"]["error"] == (
        "permission denied (iptables-legacy-save v1.8.9 (legacy): Cannot initialize: Permission denied"
        " (you must be root)); run as root"
    )
    assert sources["iptables-nft-save"]["error"] == "permission denied executing `iptables-nft-save`"
    reasons = snapshot.incomplete_reasons()
    assert len(reasons) == 2
    assert reasons[0].startswith("iptables: no iptables backend could be read (iptables-legacy-save: permission denied")
    assert "iptables-nft-save: permission denied executing" in reasons[0]
    assert reasons[1] == (
        "nftables: permission denied (netlink: Error: cache initialization failed: Operation not permitted); run as root"
    )


def test_silent_metrics_port_is_recorded_within_a_second(tmp_path: Path, silent_port: int) -> None:
    root = make_node(tmp_path / "node")
    add_process(root, 4242, ["/usr/local/bin/kube-proxy", f"--metrics-bind-address=127.0.0.1:{silent_port}"])
    runner = FakeRunner(node_commands())
    start = time.monotonic()
    snapshot = collect(tmp_path / "snap", runner=runner, root=root, probe=False)
    elapsed = time.monotonic() - start
    runner.assert_done()
    assert elapsed < 2.5
    src = meta(tmp_path / "snap")["sources"]["kube-proxy-metrics"]
    assert src["ok"] is False and src["absent"] is False
    assert src["error"] == (
        f"http://127.0.0.1:{silent_port}/proxyMode: no answer within 1 s; check metricsBindAddress / --metrics-bind-address"
    )
    assert 0.9 < src["seconds"] < 2.0
    kp = snapshot.host.kube_proxy
    assert kp.running and kp.pid == 4242 and kp.metrics is None and kp.mode == "iptables" and kp.mode_setting == ""
    assert snapshot.complete  # metrics are not required


def test_nf_tables_not_loaded_is_not_loaded_by_collect(tmp_path: Path, closed_port: int) -> None:
    """nft and iptables-nft-save would load nf_tables: they are not run, and the state is empty."""
    root = make_node(tmp_path / "node", modules="ip_tables 1 0 - Live 0x0\n")
    commands = [
        e for e in node_commands() if e.argv not in (NFT_RULESET, ("iptables-nft-save",), ("ip6tables-nft-save",))
    ]
    runner = FakeRunner(commands)
    snapshot, out = run_collect(tmp_path, runner, closed_port, root=root)
    sources = meta(out)["sources"]
    for name in ("nftables", "iptables-nft-save", "ip6tables-nft-save"):
        assert sources[name]["ok"] is True and sources[name]["file"] is None
        assert sources[name]["note"].startswith("nf_tables is not loaded")
    assert snapshot.complete
    assert snapshot_model(read_snapshot(out), ProxyMode.NFTABLES).services == ()


def test_incompatible_table_is_a_failed_dump(tmp_path: Path, closed_port: int) -> None:
    text = b"# Table `nat' is incompatible, use 'nft' tool.\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    runner = FakeRunner(node_commands(saves={"iptables-nft-save": Expect(("iptables-nft-save",), text)}))
    snapshot, out = run_collect(tmp_path, runner, closed_port)
    src = meta(out)["sources"]["iptables-nft-save"]
    assert src["ok"] is False and src["file"] == "iptables-nft-save.txt"
    assert src["error"].startswith("table(s) nat left out: iptables-nft-save reports them incompatible")
    assert snapshot.complete  # the legacy backend was read
    assert [r.name for r in snapshot.failed_sources()] == ["iptables-nft-save"]


def test_iptc_reads_the_legacy_backend_in_a_child_process(tmp_path: Path, closed_port: int) -> None:
    text = b"*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
    iptc = {
        "iptables-legacy-save": Expect((sys.executable, "-m", "auditor.collect.iptc", "ipv4"), text),
        "ip6tables-legacy-save": Expect(
            (sys.executable, "-m", "auditor.collect.iptc", "ipv6"),
            returncode=2,
            stderr=b"python-iptables unavailable: x\n",
        ),
    }
    runner = FakeRunner(node_commands(iptc=iptc))
    snapshot, out = run_collect(tmp_path, runner, closed_port, iptc=True)
    sources = meta(out)["sources"]
    assert sources["iptables-legacy-save"]["method"] == "python-iptables"
    assert (out / "iptables-legacy-save.txt").read_bytes() == text
    assert sources["ip6tables-legacy-save"]["error"] == (
        "exit status 2: python-iptables unavailable: x; drop --iptc to read the legacy backend with iptables-legacy-save"
    )
    assert snapshot.complete  # the nft backend was read in full


def test_garbled_nft_output_is_a_failure(tmp_path: Path, closed_port: int) -> None:
    runner = FakeRunner(node_commands(nft=Expect(NFT_RULESET, b"table ip filter {\n}\n")))
    snapshot, _ = run_collect(tmp_path, runner, closed_port)
    assert snapshot.incomplete_reasons() == [
        "nftables: output is not nft JSON (starts with 'table ip filter '); nft 0.9.0 or later is needed for -j"
    ]


def test_fake_runner_rejects_unexpected_commands() -> None:
    runner = FakeRunner([Expect(("nft", "--version"))])
    with pytest.raises(AssertionError, match="unexpected command"):
        runner.run(["iptables-save"], 1)
    with pytest.raises(AssertionError, match="no more commands"):
        runner.run(["nft", "--version"], 1)


def test_a_bug_in_one_source_is_recorded_and_collection_goes_on(
    tmp_path: Path, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(root: Path) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("auditor.collect.host.sysctls", boom)
    snapshot, out = run_collect(tmp_path, FakeRunner(node_commands()), closed_port)
    src = meta(out)["sources"]["sysctls"]
    assert src["ok"] is False and src["error"] == "internal error: RuntimeError: boom (please report it)"
    assert snapshot.complete and "addresses" in meta(out)["sources"]  # later sources still ran


def test_existing_output_is_refused_before_collecting(tmp_path: Path) -> None:
    (tmp_path / "snap").write_text("not mine")
    with pytest.raises(InputError, match="already exists"):
        collect(tmp_path / "snap", runner=FakeRunner([]), root=make_node(tmp_path / "node"))
