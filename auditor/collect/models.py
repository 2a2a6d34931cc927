"""From a snapshot to Service models: which dumps hold kube-proxy's state, and which mode to model.

iptables mode reads the `*-save` dumps of the backend that holds kube-proxy's state
(`KUBE-SERVICES` in the nat table). If both backends hold it, the backend the `iptables`
command uses (`iptables --version`) wins, and `IptablesChoice.with_state` keeps both for a
later "state in both backends" check. nftables mode reads `nft-ruleset.json`.

The default mode is the one kube-proxy runs in (from /proxyMode, /configz, its config or
--proxy-mode; an unset mode means iptables), else the mode whose state the node holds.
A model is never built from a source that failed: that is an `InputError` saying which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from auditor.collect.snapshot import Snapshot
from auditor.collect.sources import IPTABLES_SAVES, NFT_RULESET_FILE, NFTABLES, IptablesSave
from auditor.errors import InputError
from auditor.model import ProxyMode, ServiceModel
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import IptablesDump, parse_iptables_save

if TYPE_CHECKING:
    from auditor.parse.nft_json import NftRuleset

_BACKEND_OF_VERSION = {"nf_tables": "nft", "legacy": "legacy"}
_KUBE_PROXY_TABLE = "kube-proxy"


@dataclass(frozen=True)
class IptablesChoice:
    """The iptables backend to model, and every backend holding kube-proxy state."""

    #: "legacy" or "nft"; None when no backend could be read at all
    backend: str | None
    #: backends whose nat table has KUBE-SERVICES (both: a later check warns)
    with_state: tuple[str, ...]
    reason: str


def holds_kube_proxy_state(text: str) -> bool:
    """True when the dump's nat table declares KUBE-SERVICES (a cheap scan of the text)."""
    start = text.find("*nat\n")
    if start < 0:
        return False
    end = text.find("\nCOMMIT", start)
    section = text[start : end if end >= 0 else len(text)]
    return "\n:KUBE-SERVICES " in section


def _readable(snapshot: Snapshot, save: IptablesSave) -> bool:
    record = snapshot.source(save.name)
    return record is not None and record.ok and record.file is not None


def iptables_choice(snapshot: Snapshot) -> IptablesChoice:
    """Which backend holds kube-proxy's iptables state (see the module docstring)."""
    readable = [b for b in ("legacy", "nft") if any(_readable(snapshot, s) for s in IPTABLES_SAVES if s.backend == b)]
    with_state = tuple(
        b
        for b in readable
        if any(
            holds_kube_proxy_state(snapshot.iptables_save(s.name) or "")
            for s in IPTABLES_SAVES
            if s.backend == b and _readable(snapshot, s)
        )
    )
    preferred = _BACKEND_OF_VERSION.get(snapshot.host.iptables_backend or "")
    if len(with_state) == 1:
        return IptablesChoice(with_state[0], with_state, f"only the {with_state[0]} backend holds KUBE-SERVICES")
    if with_state:
        backend = preferred if preferred in with_state else "nft"
        why = "`iptables --version` uses it" if preferred in with_state else "`iptables --version` is unknown"
        return IptablesChoice(backend, with_state, f"both backends hold KUBE-SERVICES; using {backend} ({why})")
    if not readable:
        return IptablesChoice(None, (), "no iptables backend could be read")
    backend = preferred if preferred in readable else readable[-1]
    return IptablesChoice(backend, (), f"no backend holds KUBE-SERVICES; using {backend}")


def nftables_ruleset(snapshot: Snapshot) -> NftRuleset | None:
    """The parsed `nft -j list ruleset`; None when nf_tables is absent on the node."""
    from auditor.parse.nft_json import parse_nft_json

    record = snapshot.source(NFTABLES)
    if record is None or not record.ok:
        problem = "not collected" if record is None else (record.error or "failed")
        raise InputError(snapshot.location, f"the nftables state is missing from this snapshot: {problem}")
    data = snapshot.nft_ruleset()
    if data is None:
        return None
    return parse_nft_json(data, f"{snapshot.location}/{NFT_RULESET_FILE}")


def nftables_holds_state(ruleset: NftRuleset | None) -> bool:
    return ruleset is not None and any(ruleset.table(family, _KUBE_PROXY_TABLE) is not None for family in ("ip", "ip6"))


def kube_proxy_mode(snapshot: Snapshot) -> str | None:
    """The mode kube-proxy runs in as the snapshot recorded it ("" counts as iptables), or None."""
    kp = snapshot.host.kube_proxy
    if kp.mode is None:
        return None
    return kp.mode or ProxyMode.IPTABLES.value


def default_mode(snapshot: Snapshot) -> tuple[ProxyMode, str]:
    """(mode, why): kube-proxy's mode, else the mode whose state the node holds."""
    running = kube_proxy_mode(snapshot)
    if running is not None:
        try:
            return ProxyMode(running), f"kube-proxy runs in {running} mode ({snapshot.host.kube_proxy.mode_source})"
        except ValueError:
            raise InputError(
                snapshot.location,
                f"kube-proxy runs in {running!r} mode; kp-audit models iptables and nftables: pass --mode",
            ) from None
    iptables_state = bool(iptables_choice(snapshot).with_state)
    nft_state = snapshot.source(NFTABLES) is not None and _nft_state_or_false(snapshot)
    if nft_state and not iptables_state:
        return ProxyMode.NFTABLES, "kube-proxy not found; only the nftables state holds kube-proxy rules"
    if iptables_state and nft_state:
        return ProxyMode.IPTABLES, "kube-proxy not found; both iptables and nftables hold kube-proxy rules"
    if iptables_state:
        return ProxyMode.IPTABLES, "kube-proxy not found; the iptables state holds kube-proxy rules"
    return ProxyMode.IPTABLES, "kube-proxy not found and no kube-proxy rules anywhere"


def _nft_state_or_false(snapshot: Snapshot) -> bool:
    record = snapshot.source(NFTABLES)
    if record is None or not record.ok:
        return False
    return nftables_holds_state(nftables_ruleset(snapshot))


def iptables_dumps(snapshot: Snapshot, backend: str) -> list[IptablesDump]:
    """The parsed dumps (IPv4, IPv6) of one backend; a failed one is an `InputError`."""
    dumps = []
    for save in IPTABLES_SAVES:
        if save.backend != backend:
            continue
        record = snapshot.source(save.name)
        if record is None or record.absent:
            continue
        if not record.ok:
            raise InputError(
                snapshot.location,
                f"{save.name} failed ({record.error}): the {backend} backend's iptables state is incomplete",
            )
        text = snapshot.iptables_save(save.name)
        if text is None:
            continue  # ok without a file: nf_tables is absent, so this backend holds nothing
        dumps.append(
            parse_iptables_save(text, source=f"{snapshot.location}/{save.file}", ipv6=save.ipv6, allow_empty=True)
        )
    return dumps


def snapshot_model(snapshot: Snapshot, mode: ProxyMode | None = None) -> ServiceModel:
    """The Service model of `mode` (default: `default_mode`) from the snapshot's dumps."""
    if mode is None:
        mode, _ = default_mode(snapshot)
    if mode is ProxyMode.NFTABLES:
        from auditor.normalize.nftables import normalize_nftables

        ruleset = nftables_ruleset(snapshot)
        if ruleset is None:
            return ServiceModel(mode=ProxyMode.NFTABLES, services=())
        model: ServiceModel = normalize_nftables(ruleset, require_table=False)
        return model
    choice = iptables_choice(snapshot)
    if choice.backend is None:
        reasons = [r for r in snapshot.incomplete_reasons() if r.startswith("iptables")]
        raise InputError(
            snapshot.location, reasons[0] if reasons else "the iptables state is missing from this snapshot"
        )
    return normalize_iptables(iptables_dumps(snapshot, choice.backend))
