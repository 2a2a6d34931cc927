"""Build the checks' view of a node from a snapshot (directory or .tar.gz)."""

from __future__ import annotations

import json

from auditor.check.context import CheckContext
from auditor.collect.facts import host_to_json
from auditor.collect.models import (
    iptables_choice,
    kube_proxy_mode,
    nftables_ruleset,
)
from auditor.collect.probe import ProbeResult
from auditor.collect.snapshot import Snapshot
from auditor.collect.sources import IPTABLES_SAVES, NFTABLES
from auditor.errors import InputError
from auditor.model import ProxyMode
from auditor.normalize.node import node_models
from auditor.parse.iptables_save import IptablesDump, parse_iptables_save
from auditor.versions import Version


def context_from_snapshot(snapshot: Snapshot, target_version: Version | None = None) -> CheckContext:
    """Everything the checks look at, parsed once; a garbled dump is an `InputError` (exit 3)."""
    dumps: dict[str, IptablesDump] = {}
    for save in IPTABLES_SAVES:
        record = snapshot.source(save.name)
        if record is None or not record.ok or record.file is None:
            continue
        text = snapshot.iptables_save(save.name)
        if text is not None:
            source = f"{snapshot.location}/{save.file}"
            dumps[save.file] = parse_iptables_save(text, source=source, ipv6=save.ipv6, allow_empty=True)
    nft_record = snapshot.source(NFTABLES)
    ruleset = nftables_ruleset(snapshot) if nft_record is not None and nft_record.ok else None
    choice = iptables_choice(snapshot)
    models = node_models(dumps, ruleset, preferred_backend=choice.backend)
    mode = kube_proxy_mode(snapshot)
    return CheckContext(
        node=snapshot.meta.hostname or "unknown",
        host=host_to_json(snapshot.host),
        sources={name: record.to_json() for name, record in snapshot.meta.sources.items()},
        iptables=dumps,
        nft=ruleset,
        models=models,
        current_mode=ProxyMode(mode) if mode in (ProxyMode.IPTABLES.value, ProxyMode.NFTABLES.value) else None,
        probe=_probe(snapshot),
        target_version=target_version,
        origin=snapshot.location,
        incomplete=tuple(snapshot.incomplete_reasons()),
        extras={"iptables_backend": choice.backend, "iptables_backends_with_state": choice.with_state},
    )


def _probe(snapshot: Snapshot) -> ProbeResult | None:
    data = snapshot.raw("probe.json")
    if data is None:
        return None
    try:
        loaded = json.loads(data)
    except ValueError as exc:
        raise InputError(f"{snapshot.location}/probe.json", f"not JSON: {exc}") from exc
    if not isinstance(loaded, dict):
        raise InputError(f"{snapshot.location}/probe.json", "not a probe result")
    return ProbeResult.from_json(loaded)
