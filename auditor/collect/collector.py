"""`collect`: read a node's rules and facts into a snapshot. Read-only on the node.

It runs the `*-save` dumps and `nft -j list ruleset` (the two required sources), then the
host and kube-proxy facts, one source at a time through the injected `Runner`, and writes
the snapshot whatever failed: every failure is recorded in meta.json, and
`Snapshot.incomplete_reasons()` says when a required source is missing. Nothing here
changes rules, sysctls or modules (see auditor.collect.iptables/nftables/iptc for how the
module autoloading of the tools is avoided).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from auditor import __version__
from auditor.collect import host as host_mod
from auditor.collect import iptables as iptables_mod
from auditor.collect import kube_proxy as kube_proxy_mod
from auditor.collect import nftables as nftables_mod
from auditor.collect.facts import Address, HostFacts, KubeProxyFacts, Modules, SysctlValue
from auditor.collect.iptc import iptc_command
from auditor.collect.probe import probe_features
from auditor.collect.progress import NullProgress, Progress
from auditor.collect.runner import DEFAULT_TIMEOUT, Failure, Runner, SubprocessRunner
from auditor.collect.snapshot import SCHEMA, Snapshot, SnapshotMeta, check_output, write_snapshot
from auditor.collect.sources import (
    IPTABLES_SAVES,
    NFTABLES,
    Collected,
    IptablesSave,
    Required,
    SourceRecord,
    Stopwatch,
    from_command,
)


class _Run:
    """The state of one collection: records, files and facts gathered so far."""

    def __init__(self, runner: Runner, timeout: float, root: Path) -> None:
        self.runner = runner
        self.timeout = timeout
        self.root = root
        self.records: dict[str, SourceRecord] = {}
        self.files: dict[str, bytes] = {}
        self.kernel: str | None = None
        self.modules = Modules()
        self.os_release: dict[str, str] | None = None
        self.nft_version: tuple[str | None, str | None] = (None, None)
        self.iptables_version: tuple[str | None, str | None, str | None] = (None, None, None)
        self.sysctls: dict[str, SysctlValue] = {}
        self.addresses: tuple[Address, ...] | None = None
        self.kube_proxy = KubeProxyFacts()

    def add(self, got: Collected) -> Collected:
        # seconds as meta.json stores them, so the snapshot returned equals the one read back
        self.records[got.record.name] = dataclasses.replace(got.record, seconds=round(got.record.seconds, 6))
        if got.data is not None and got.record.file is not None:
            self.files[got.record.file] = got.data
        return got


def collect(
    output: str | Path,
    *,
    runner: Runner | None = None,
    progress: Progress | None = None,
    iptc: bool = False,
    kube_proxy_config: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    nft: str = "nft",
    root: str | Path = "/",
    metrics_address: str | None = None,
    http_timeout: float = 1.0,
    probe: bool = True,
) -> Snapshot:
    """Collect this node into a snapshot at `output` (a new directory, or a .tar.gz).

    `iptc` reads the legacy backend with python-iptables instead of iptables-legacy-save.
    `kube_proxy_config` supplies kube-proxy's config file when kube-proxy runs elsewhere.
    `timeout` bounds every command; `nft` is the nft binary; `root` is the filesystem
    root to read /proc, /etc and /lib/modules from; `metrics_address` overrides where
    kube-proxy's metrics server is asked (default: from its config/flags, else
    127.0.0.1:10249), within `http_timeout` seconds. `probe` runs the kernel-feature
    probe (`nft --check` batches in a private network namespace, see auditor.collect.probe).
    """
    check_output(output)  # fail before collecting, not after
    run = _Run(runner or SubprocessRunner(), timeout, Path(root))
    show = progress or NullProgress()
    steps = _steps(
        run, iptc, nft, Path(kube_proxy_config) if kube_proxy_config else None, metrics_address, http_timeout
    )
    if probe:
        steps.append(("probe", lambda: [_probe(run, nft)]))
    show.start([label for label, _ in steps])
    try:
        for label, step in steps:
            show.step(label)
            records = [run.records[run.add(got).record.name] for got in _guarded(label, step)]
            show.done(label, records)
    finally:
        show.finish()
    meta = SnapshotMeta(
        schema=SCHEMA,
        tool_version=__version__,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        hostname=_hostname(run.root),
        sources=dict(run.records),
    )
    return write_snapshot(output, meta, _host_facts(run), run.files)


def _guarded(label: str, step: Callable[[], Sequence[Collected]]) -> Sequence[Collected]:
    """The step's results; a bug in one source is recorded as that source's failure, and collection goes on."""
    try:
        return step()
    except Exception as exc:
        required = Required.NFTABLES if label == NFTABLES else None
        if any(label == save.name for save in IPTABLES_SAVES):
            required = Required.IPTABLES
        error = f"internal error: {type(exc).__name__}: {exc} (please report it)"
        return [Collected(SourceRecord(label, (), False, error, required=required))]


def _steps(
    run: _Run,
    iptc: bool,
    nft: str,
    kube_proxy_config: Path | None,
    metrics_address: str | None,
    http_timeout: float,
) -> list[tuple[str, Callable[[], Sequence[Collected]]]]:
    steps: list[tuple[str, Callable[[], Sequence[Collected]]]] = [
        ("kernel", lambda: [_kernel(run)]),
        ("modules", lambda: _modules(run)),
    ]
    for save in IPTABLES_SAVES:
        steps.append((save.name, _save_step(run, save, iptc)))
    steps += [
        ("nftables", lambda: [nftables_mod.collect_ruleset(run.runner, run.timeout, run.modules, nft)]),
        ("versions", lambda: _versions(run, nft)),
        ("os-release", lambda: [_os_release(run)]),
        ("sysctls", lambda: [_sysctls(run)]),
        ("addresses", lambda: [_addresses(run)]),
        ("kube-proxy", lambda: _kube_proxy(run, kube_proxy_config, metrics_address, http_timeout)),
    ]
    return steps


def _save_step(run: _Run, save: IptablesSave, iptc: bool) -> Callable[[], Sequence[Collected]]:
    if iptc and save.backend == "legacy":
        return lambda: [_iptc_save(run, save)]
    return lambda: [iptables_mod.collect_save(save, run.runner, run.timeout, run.modules)]


def _iptc_save(run: _Run, save: IptablesSave) -> Collected:
    """The legacy backend through python-iptables, in a child process under the runner."""
    result = run.runner.run(iptc_command(save.ipv6), run.timeout)
    hint = "drop --iptc to read the legacy backend with iptables-legacy-save" if not result.ok else None
    record = from_command(save.name, result, file=save.file, required=Required.IPTABLES, hint=hint)
    record = dataclasses.replace(record, method="python-iptables")
    return Collected(record, None, result.stdout if result.ok else None)


def _probe(run: _Run, nft: str) -> Collected:
    """The kernel-feature probe through the injected runner; its result goes to probe.json."""
    binary = shutil.which(nft) or next((p for p in (f"/usr/sbin/{nft}", f"/sbin/{nft}") if os.access(p, os.X_OK)), nft)

    def batch(argv: list[str], text: str, timeout: float) -> tuple[int, str]:
        result = run.runner.run(argv, timeout, input=text.encode())
        if result.failure is Failure.TIMEOUT:
            raise subprocess.TimeoutExpired(argv, timeout)
        if result.failure is Failure.MISSING:
            raise OSError(f"{argv[0]} not found")
        return (-1 if result.returncode is None else result.returncode), result.stderr.decode(errors="replace")

    watch = Stopwatch()
    outcome = probe_features(binary, run=batch, timeout=min(run.timeout, 10.0))
    command = ("unshare", "-n", binary, "--check", "-f", "-")
    record = SourceRecord("probe", command, outcome.ran, None if outcome.ran else outcome.reason, watch.seconds, file="probe.json")
    return Collected(record, outcome, json.dumps(outcome.to_json(), indent=2).encode())


def _kernel(run: _Run) -> Collected:
    got = host_mod.kernel_release(run.root, run.runner, run.timeout)
    run.kernel = got.value
    return got


def _modules(run: _Run) -> list[Collected]:
    loaded, builtin = host_mod.modules(run.root, run.kernel)
    run.modules = Modules(loaded=loaded.value, builtin=builtin.value)
    return [loaded, builtin]


def _versions(run: _Run, nft: str) -> list[Collected]:
    nft_got = host_mod.nft_version(run.runner, nft, run.timeout)
    run.nft_version = nft_got.value
    ipt_got = host_mod.iptables_version(run.runner, run.timeout)
    run.iptables_version = ipt_got.value
    return [nft_got, ipt_got]


def _os_release(run: _Run) -> Collected:
    got = host_mod.os_release(run.root)
    run.os_release = got.value
    return got


def _sysctls(run: _Run) -> Collected:
    got = host_mod.sysctls(run.root)
    run.sysctls = got.value
    return got


def _addresses(run: _Run) -> Collected:
    got = host_mod.addresses(run.runner, run.timeout)
    run.addresses = got.value
    return got


def _kube_proxy(
    run: _Run, kube_proxy_config: Path | None, metrics_address: str | None, http_timeout: float
) -> list[Collected]:
    facts, records = kube_proxy_mod.discover(
        run.root, kube_proxy_config=kube_proxy_config, metrics_address=metrics_address, http_timeout=http_timeout
    )
    run.kube_proxy = facts
    return [Collected(record) for record in records]


def _host_facts(run: _Run) -> HostFacts:
    return HostFacts(
        kernel_release=run.kernel,
        os_release=run.os_release,
        nft_version=run.nft_version[0],
        nft_version_text=run.nft_version[1],
        iptables_version=run.iptables_version[0],
        iptables_backend=run.iptables_version[1],
        iptables_version_text=run.iptables_version[2],
        sysctls=run.sysctls,
        modules=run.modules,
        addresses=run.addresses,
        kube_proxy=run.kube_proxy,
    )


def _hostname(root: Path) -> str:
    text = host_mod.read_text(root, "/proc/sys/kernel/hostname")
    return text.strip() if text and text.strip() else socket.gethostname()


__all__ = ["collect"]
