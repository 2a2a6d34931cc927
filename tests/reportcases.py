"""One shared set of reports every renderer test uses: ready, blocked, incomplete, waived, and a
hostile node whose rule comment and chain name hold `<script>`, quotes and ampersands."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from auditor.audit import AuditOptions, audit_snapshot
from auditor.check.waivers import parse_waivers
from auditor.collect.snapshot import read_snapshot
from tests.snapshots import ready_host, ready_iptables, write_snapshot_dir

TODAY = date(2026, 11, 26)
CREATED = datetime(2026, 11, 26, 12, 0, 0)
#: what a hostile node writes into its rules
EVIL_CHAIN = "EVIL<script>&amp"
EVIL_COMMENT_RAW = "<script>alert('x')</script> & \"quoted\""
WAIVERS = """
waivers:
  - check: KPA-001
    reason: "kernel upgrade scheduled <b>next week</b>"
    owner: node-team
    expires: 2027-01-31
"""


def hostile_iptables() -> str:
    """The ready node's rules plus a third party's nat chain that jumps to KUBE-MARK-MASQ."""
    comment = EVIL_COMMENT_RAW.replace('"', '\\"')
    out: list[str] = []
    for line in ready_iptables().splitlines():
        out.append(line)
        if line == "*nat":
            out.append(f":{EVIL_CHAIN} - [0:0]")
    commit = out.index("COMMIT", out.index("*nat"))
    out[commit:commit] = [f'-A PREROUTING -m comment --comment "{comment}" -j {EVIL_CHAIN}', f"-A {EVIL_CHAIN} -j KUBE-MARK-MASQ"]
    return "\n".join(out) + "\n"


def old_kernel_host() -> dict[str, Any]:
    host = ready_host()
    host["kernel_release"] = "5.10.0-28-amd64"
    return host


def write_cases(root: Path) -> dict[str, Path]:
    """Snapshot directories by case name."""
    return {
        "ready": write_snapshot_dir(root / "ready"),
        "blocked": write_snapshot_dir(root / "blocked", host=old_kernel_host()),
        "incomplete": write_snapshot_dir(root / "incomplete", failed={"nftables": "nft: not found on PATH"}),
        "hostile": write_snapshot_dir(root / "hostile", iptables={"iptables-nft-save.txt": hostile_iptables()}),
    }


def build_reports(snapshots: Mapping[str, Path]) -> dict[str, dict[str, Any]]:
    """The report of every case, plus "waived": the blocked node with its blocker waived."""
    reports = {}
    for name, path in snapshots.items():
        options = AuditOptions(cluster="prod-eu1" if name == "blocked" else None, today=TODAY, created=CREATED)
        reports[name] = audit_snapshot(read_snapshot(str(path)), options).report
    waivers = parse_waivers(WAIVERS, "waivers.yaml")
    waived = AuditOptions(waivers=waivers, today=TODAY, created=CREATED)
    reports["waived"] = audit_snapshot(read_snapshot(str(snapshots["blocked"])), waived).report
    return reports
