"""`kp-audit scan` on a real kernel in a throwaway namespace: read-only, and never "ready"
when a required source fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Namespace, namespace, reference, require_kernel
from tests.test_collect_live import NFACCT_OBJECTS, node_state

pytestmark = pytest.mark.kernel
KP_AUDIT = str(Path(sys.executable).parent / "kp-audit")


def scan_in(ns: Namespace, *options: str) -> tuple[int, dict, str]:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns.name, KP_AUDIT, "scan", "--quiet", "--format", "json", *options],
        capture_output=True, text=True, timeout=300,
    )
    return proc.returncode, json.loads(proc.stdout) if proc.stdout else {}, proc.stderr


def loaded(ns: Namespace) -> None:
    for name in NFACCT_OBJECTS:
        ns.run(["nfacct", "add", name])
    ns.run(["iptables-nft-restore"], stdin=reference("overall.iptables-save.txt").read_text())
    ns.run(["nft", "-f", "-"], stdin=reference("overall.nft.ordered.txt").read_text())


def test_scan_is_read_only_and_reports(tmp_path: Path) -> None:
    require_kernel("nfacct", "nft", "iptables-nft-restore", "iptables-legacy-save", "unshare")
    with namespace("kpa-scan") as ns:
        loaded(ns)
        before = node_state(ns)
        code, report, err = scan_in(ns, "--keep-snapshot", str(tmp_path / "snap"), "--target-version", "1.34")
        after = node_state(ns)
    assert before == after
    assert report["schema"] == "kp-audit.report/v1" and report["snapshot"]["complete"], err
    assert set(report["services"]["models"]) == {"iptables", "nftables"}
    assert code == {"blocked": 2, "incomplete": 3}.get(report["verdict"], 0)
    assert (tmp_path / "snap" / "meta.json").exists() and (tmp_path / "snap" / "probe.json").exists()


def test_scan_with_a_failed_required_source_exits_3(tmp_path: Path) -> None:
    require_kernel("nfacct", "nft", "iptables-nft-restore")
    with namespace("kpa-scan") as ns:
        loaded(ns)
        code, report, err = scan_in(ns, "--nft", "/nonexistent/nft")
    assert report["verdict"] in ("incomplete", "blocked") and report["verdict"] != "ready"
    assert code == (2 if report["verdict"] == "blocked" else 3)
    assert "nftables" in err and "Traceback" not in err
