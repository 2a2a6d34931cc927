"""Host facts: kernel, distribution, nft/iptables versions, sysctls, modules, addresses.

Everything here only reads: files under /proc, /etc and /lib/modules, and commands that
print versions or addresses. `root` is the filesystem root to read from ("/" on a node; a
fake tree in tests). Each function returns a `Collected` whose record says what was read
and whether it worked.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from auditor.collect.facts import Address, SysctlValue
from auditor.collect.runner import Runner
from auditor.collect.sources import Collected, SourceRecord, Stopwatch, from_command, read_command

#: the sysctls later checks read (a missing one is recorded as null)
SYSCTLS = (
    "net.ipv4.conf.all.route_localnet",
    "net.netfilter.nf_conntrack_tcp_be_liberal",
    "net.ipv4.ip_forward",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.ipv6.conf.all.forwarding",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)

_VERSION = re.compile(r"\bv?(\d+(?:\.\d+)+)")


def node_path(root: Path, path: str) -> Path:
    """`path` (absolute on the node) under `root`."""
    return root / path.lstrip("/")


def read_text(root: Path, path: str) -> str | None:
    """The file's text, or None when it does not exist or cannot be read."""
    try:
        return node_path(root, path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def kernel_release(root: Path, runner: Runner, timeout: float) -> Collected:
    """/proc/sys/kernel/osrelease, else `uname -r`."""
    watch = Stopwatch()
    text = read_text(root, "/proc/sys/kernel/osrelease")
    if text is not None and text.strip():
        return Collected(
            SourceRecord("kernel", read_command("/proc/sys/kernel/osrelease"), True, None, watch.seconds), text.strip()
        )
    result = runner.run(["uname", "-r"], timeout)
    release = result.stdout.decode("utf-8", "replace").strip() if result.ok else None
    return Collected(from_command("kernel", result), release or None)


def os_release(root: Path) -> Collected:
    """/etc/os-release (or /usr/lib/os-release) as a dict."""
    watch = Stopwatch()
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = read_text(root, path)
        if text is not None:
            return Collected(
                SourceRecord("os-release", read_command(path), True, None, watch.seconds), parse_os_release(text)
            )
    record = SourceRecord(
        "os-release", read_command("/etc/os-release"), False, "no /etc/os-release or /usr/lib/os-release", watch.seconds
    )
    return Collected(record, None)


def parse_os_release(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        out[key.strip()] = " ".join(words)
    return out


def tool_version(name: str, runner: Runner, argv: list[str], timeout: float) -> Collected:
    """`<tool> --version`: (version number, whole line, backend in parentheses); absent when not installed."""
    result = runner.run(argv, timeout)
    record = from_command(name, result, absent_ok=True)
    if not result.ok:
        return Collected(record, (None, None, None))
    line = (result.stdout or result.stderr).decode("utf-8", "replace").strip().splitlines()
    text = line[0].strip() if line else ""
    match = _VERSION.search(text)
    backend = re.search(r"\(([^)]*)\)\s*$", text)
    backend_name = backend.group(1) if backend else None
    return Collected(record, (match.group(1) if match else None, text or None, backend_name))


def nft_version(runner: Runner, nft: str, timeout: float) -> Collected:
    """`nft --version`: value is (version, line)."""
    got = tool_version("nft-version", runner, [nft, "--version"], timeout)
    version, text, _ = got.value
    return Collected(got.record, (version, text))


def iptables_version(runner: Runner, timeout: float) -> Collected:
    """`iptables --version`: value is (version, backend "nf_tables"/"legacy", line)."""
    got = tool_version("iptables-version", runner, ["iptables", "--version"], timeout)
    version, text, backend = got.value
    if text is not None and backend is None:
        backend = "legacy"  # iptables before 1.8 had only the legacy backend and printed none
    return Collected(got.record, (version, backend, text))


def sysctls(root: Path, names: tuple[str, ...] = SYSCTLS) -> Collected:
    """The sysctls from /proc/sys: an int, the text, or None when the file does not exist."""
    watch = Stopwatch()
    values: dict[str, SysctlValue] = {}
    for name in names:
        text = read_text(root, "/proc/sys/" + name.replace(".", "/"))
        values[name] = None if text is None else _sysctl_value(text)
    ok = node_path(root, "/proc/sys").is_dir()
    error = None if ok else "/proc/sys is not readable"
    return Collected(SourceRecord("sysctls", read_command("/proc/sys"), ok, error, watch.seconds), values)


def _sysctl_value(text: str) -> SysctlValue:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return text


def modules(root: Path, release: str | None) -> tuple[Collected, Collected]:
    """Loaded modules (/proc/modules) and built-in ones (modules.builtin); value None when unknown."""
    watch = Stopwatch()
    text = read_text(root, "/proc/modules")
    loaded = None if text is None else tuple(line.split()[0] for line in text.splitlines() if line.strip())
    note = None if text is not None else "no /proc/modules: the kernel has no loadable modules"
    loaded_rec = SourceRecord("modules", read_command("/proc/modules"), True, None, watch.seconds, note=note)
    watch = Stopwatch()
    builtin: tuple[str, ...] | None = None
    path = f"/lib/modules/{release or '$(uname -r)'}/modules.builtin"
    note = None
    if release is not None:
        for candidate in (path, f"/usr/lib/modules/{release}/modules.builtin"):
            btext = read_text(root, candidate)
            if btext is not None:
                path = candidate
                builtin = tuple(_module_name(line) for line in btext.splitlines() if line.strip())
                break
        else:
            note = f"{path} not found: which modules are built in is unknown"
    else:
        note = "kernel release unknown: modules.builtin not read"
    builtin_rec = SourceRecord(
        "modules-builtin",
        read_command(path),
        builtin is not None,
        None,
        watch.seconds,
        absent=builtin is None,
        note=note,
    )
    return Collected(loaded_rec, loaded), Collected(builtin_rec, builtin)


def _module_name(line: str) -> str:
    name = line.strip().rsplit("/", 1)[-1]
    for suffix in (".ko", ".ko.xz", ".ko.gz", ".ko.zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("-", "_")


def addresses(runner: Runner, timeout: float) -> Collected:
    """`ip -j addr`: every address of every interface."""
    result = runner.run(["ip", "-j", "addr"], timeout)
    record = from_command("addresses", result, hint="install iproute2" if result.missing else None)
    if not result.ok:
        return Collected(record, None)
    try:
        return Collected(record, parse_ip_addr(result.stdout))
    except ValueError as exc:
        bad = SourceRecord("addresses", record.command, False, f"unreadable `ip -j addr` output: {exc}", record.seconds)
        return Collected(bad, None)


def parse_ip_addr(data: bytes) -> tuple[Address, ...]:
    """Addresses from `ip -j addr` JSON; ValueError when it is not that."""
    try:
        links = json.loads(data or b"[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(links, list):
        raise ValueError("expected a JSON array")
    out = []
    for link in links:
        if not isinstance(link, dict):
            continue
        name = link.get("ifname")
        for info in link.get("addr_info") or ():
            if not isinstance(info, dict) or "local" not in info:
                continue
            out.append(
                Address(
                    interface=str(name or info.get("label") or ""),
                    address=str(info["local"]),
                    prefix=int(info.get("prefixlen", 0)),
                    family=str(info.get("family", "")),
                    scope=info.get("scope"),
                )
            )
    return tuple(out)
