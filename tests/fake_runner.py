"""A fake command runner and a fake node filesystem for collection tests.

`FakeRunner` holds an ordered list of expected commands (argv prefix, stdout, returncode,
error); a command that is not the next one expected fails the test. Fault results are
built with the real runner's helpers, so their messages are the ones users see.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from auditor.collect.runner import CommandResult, exit_failure, spawn_failure, timeout_failure

IPTABLES_SAVES = ("iptables-legacy-save", "iptables-nft-save", "ip6tables-legacy-save", "ip6tables-nft-save")
NFT_RULESET = ("nft", "-j", "list", "ruleset")
EMPTY_NFT = b'{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}}]}\n'


@dataclass(frozen=True)
class Expect:
    """One expected command and what it does: output, exit status, or a fault."""

    argv: tuple[str, ...]
    stdout: bytes = b""
    returncode: int = 0
    stderr: bytes = b""
    #: "missing", "denied" (exec refused) or "timeout"
    fault: str | None = None


class FakeRunner:
    """Plays the expected commands in order; anything else is an AssertionError."""

    def __init__(self, expected: Sequence[Expect]) -> None:
        self.expected = list(expected)
        self.calls: list[tuple[str, ...]] = []

    def run(self, argv: Sequence[str], timeout: float, input: bytes | None = None) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        assert timeout > 0, f"{argv} run without a time limit"
        if not self.expected:
            raise AssertionError(f"unexpected command {argv}: no more commands expected")
        want = self.expected.pop(0)
        if argv[: len(want.argv)] != want.argv:
            raise AssertionError(f"unexpected command {argv}: expected {want.argv}")
        if want.fault == "missing":
            return spawn_failure(argv, FileNotFoundError(errno.ENOENT, "No such file or directory"))
        if want.fault == "denied":
            return spawn_failure(argv, PermissionError(errno.EACCES, "Permission denied"))
        if want.fault == "timeout":
            return timeout_failure(argv, timeout, want.stdout, want.stderr)
        if want.returncode != 0:
            return exit_failure(argv, want.returncode, want.stdout, want.stderr, 0.01)
        return CommandResult(argv, 0, want.stdout, want.stderr, 0.01)

    def assert_done(self) -> None:
        assert not self.expected, f"expected commands not run: {[e.argv for e in self.expected]}"


def node_commands(
    *,
    saves: dict[str, Expect] | None = None,
    nft: Expect | None = None,
    nft_version: Expect | None = None,
    iptables_version: Expect | None = None,
    addresses: Expect | None = None,
    iptc: dict[str, Expect] | None = None,
) -> list[Expect]:
    """The commands `collect` runs on a fake node, in order; any can be replaced."""
    saves = saves or {}
    iptc = iptc or {}
    out = [iptc.get(name) or saves.get(name) or Expect((name,)) for name in IPTABLES_SAVES]
    out.append(nft or Expect(NFT_RULESET, EMPTY_NFT))
    out.append(nft_version or Expect(("nft", "--version"), b"nftables v1.0.6 (Lester Gooch #5)\n"))
    out.append(iptables_version or Expect(("iptables", "--version"), b"iptables v1.8.9 (nf_tables)\n"))
    out.append(addresses or Expect(("ip", "-j", "addr"), IP_ADDR_JSON))
    return out


IP_ADDR_JSON = (
    b'[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"}]},'
    b'{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.168.0.2","prefixlen":24,"scope":"global"},'
    b'{"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global"}]}]'
)


def make_node(root: Path, *, modules: str | None = "nf_tables 1 0 - Live 0x0\nip_tables 1 0 - Live 0x0\n") -> Path:
    """A fake node filesystem: kernel, hostname, sysctls, modules, os-release; no processes."""
    files = {
        "proc/sys/kernel/osrelease": "6.1.0-21-amd64\n",
        "proc/sys/kernel/hostname": "node-a\n",
        "proc/sys/net/ipv4/ip_forward": "1\n",
        "proc/sys/net/ipv4/conf/all/route_localnet": "1\n",
        "proc/sys/net/netfilter/nf_conntrack_max": "131072\n",
        "proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal": "0\n",
        "proc/sys/net/ipv6/conf/all/forwarding": "0\n",
        "lib/modules/6.1.0-21-amd64/modules.builtin": "kernel/net/netfilter/x_tables.ko\nkernel/net/ipv4/netfilter/nf-nat.ko\n",
        "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    }
    if modules is not None:
        files["proc/modules"] = modules
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def add_process(root: Path, pid: int, argv: Sequence[str], environ: dict[str, str] | None = None) -> Path:
    """A /proc/PID entry with cmdline, environ and an (empty) root directory."""
    proc = root / "proc" / str(pid)
    (proc / "root").mkdir(parents=True, exist_ok=True)
    (proc / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    env = environ or {}
    (proc / "environ").write_bytes(b"\0".join(f"{k}={v}".encode() for k, v in env.items()) + b"\0")
    return proc
