"""Live collection: read a node's rules and facts into a snapshot (auditor.collect.snapshot).

`collect` is the entry point; `read_snapshot` reads one back. Each source has its own
module (iptables, nftables, host, kube_proxy, metrics, iptc), and every command goes
through an injected `Runner` (runner.py).
"""

from auditor.collect.collector import collect
from auditor.collect.progress import NullProgress, Progress
from auditor.collect.runner import CommandResult, Runner, SubprocessRunner
from auditor.collect.snapshot import Snapshot, SnapshotMeta, read_snapshot, write_snapshot

__all__ = [
    "CommandResult",
    "NullProgress",
    "Progress",
    "Runner",
    "Snapshot",
    "SnapshotMeta",
    "SubprocessRunner",
    "collect",
    "read_snapshot",
    "write_snapshot",
]
