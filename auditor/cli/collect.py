"""`kp-audit collect`: read this node's rules and facts into a snapshot (read-only on the node).

Progress goes to stderr (rich, only on a terminal and without --quiet), then a one-line
summary. Exit 0 when the snapshot is complete; 3 when a required source (the iptables or
the nftables state) failed: the snapshot is still written, and each missing source gets
one line saying what happened and how to fix it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from auditor.collect.collector import collect as collect_snapshot
from auditor.collect.progress import NullProgress
from auditor.collect.progress import Progress as ProgressObserver
from auditor.collect.runner import DEFAULT_TIMEOUT
from auditor.collect.snapshot import Snapshot, check_output
from auditor.collect.sources import SourceRecord
from auditor.errors import InputError

EXIT_INCOMPLETE = 3


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)


def collect(
    output: str = typer.Option(
        ...,
        "--output",
        "-o",
        envvar="KP_AUDIT_OUTPUT",
        metavar="PATH",
        help="Snapshot to write: a new directory, or a file ending in .tar.gz.",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", envvar="KP_AUDIT_QUIET", help="No progress and no summary; only errors."
    ),
    iptc: bool = typer.Option(
        False,
        "--iptc",
        envvar="KP_AUDIT_IPTC",
        help="Read the legacy backend with python-iptables instead of iptables-legacy-save (slower).",
    ),
    kube_proxy_config: str | None = typer.Option(
        None,
        "--kube-proxy-config",
        envvar="KP_AUDIT_KUBE_PROXY_CONFIG",
        metavar="FILE",
        help="kube-proxy's config file, when kube-proxy runs elsewhere.",
    ),
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT,
        "--timeout",
        envvar="KP_AUDIT_TIMEOUT",
        metavar="SECONDS",
        min=0.1,
        help="Time limit for each command.",
    ),
    nft: str = typer.Option("nft", "--nft", envvar="KP_AUDIT_NFT", metavar="PATH", help="The nft binary to run."),
    probe: bool = typer.Option(
        True,
        "--probe/--no-probe",
        envvar="KP_AUDIT_PROBE",
        help="Probe the kernel's nf_tables features (nft --check in a private namespace).",
    ),
) -> None:
    """Collect this node's iptables and nftables state and facts into a snapshot (changes nothing)."""
    check_output(output)
    if kube_proxy_config is not None and not Path(kube_proxy_config).is_file():
        raise InputError(kube_proxy_config, "no such file (--kube-proxy-config)")
    err = Console(stderr=True)
    progress: ProgressObserver = NullProgress() if quiet or not sys.stderr.isatty() else RichProgress(err)
    snapshot = collect_snapshot(
        output, progress=progress, iptc=iptc, kube_proxy_config=kube_proxy_config, timeout=timeout, nft=nft, probe=probe
    )
    reasons = snapshot.incomplete_reasons()
    if not quiet:
        sys.stderr.write(summary_line(snapshot, complete=not reasons) + "\n")
        for record in snapshot.failed_sources():
            if record.required is None:
                sys.stderr.write(f"kp-audit: warning: {record.name}: {record.error}\n")
    for reason in reasons:
        sys.stderr.write(f"kp-audit: error: {reason}\n")
    if reasons:
        raise typer.Exit(EXIT_INCOMPLETE)


def summary_line(snapshot: Snapshot, *, complete: bool) -> str:
    """ "kp-audit: snapshot written to X: 12 sources ok, 1 failed (kube-proxy-metrics), 2 absent"."""
    records = list(snapshot.meta.sources.values())
    ok = sum(r.ok for r in records)
    failed = [r.name for r in records if r.failed]
    absent = sum(r.absent for r in records)
    parts = [f"{ok} sources ok", f"{len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "")]
    if absent:
        parts.append(f"{absent} absent")
    state = "" if complete else " (INCOMPLETE)"
    return f"kp-audit: snapshot written to {snapshot.location}{state}: {', '.join(parts)}"


class RichProgress:
    """A rich progress bar on stderr: one tick per collection step."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]collect[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def start(self, steps: Sequence[str]) -> None:
        self._progress.start()
        self._task = self._progress.add_task("", total=len(steps))

    def step(self, label: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=label)

    def done(self, label: str, records: Sequence[SourceRecord]) -> None:
        if self._task is None:
            return
        for record in records:
            if record.failed:
                self._progress.console.print(f"[yellow]![/yellow] {record.name}: {record.error}", highlight=False)
        self._progress.advance(self._task)

    def finish(self) -> None:
        self._progress.stop()
