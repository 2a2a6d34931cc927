"""The nftables state: `nft -j list ruleset`.

When the kernel surely has no nf_tables (neither loaded nor built in), nft is not run,
since it would load the module; the source records that the node has no nftables rules.
The output is checked only for its JSON envelope here (cheaply); the reader in
auditor.parse.nft_json validates it fully when a model is built.
"""

from __future__ import annotations

from auditor.collect.facts import Modules
from auditor.collect.iptables import NF_TABLES_ABSENT
from auditor.collect.runner import Runner
from auditor.collect.sources import NFT_RULESET_FILE, NFTABLES, Collected, Required, SourceRecord, from_command

INSTALL_HINT = "install the nftables package or pass --nft PATH"


def ruleset_command(nft: str) -> list[str]:
    return [nft, "-j", "list", "ruleset"]


def collect_ruleset(runner: Runner, timeout: float, modules: Modules, nft: str = "nft") -> Collected:
    argv = ruleset_command(nft)
    if modules.state("nf_tables") is False:
        record = SourceRecord(NFTABLES, tuple(argv), True, None, 0.0, note=NF_TABLES_ABSENT, required=Required.NFTABLES)
        return Collected(record, None, None)
    result = runner.run(argv, timeout)
    hint = INSTALL_HINT if result.missing else None
    record = from_command(NFTABLES, result, file=NFT_RULESET_FILE, required=Required.NFTABLES, hint=hint)
    if not result.ok:
        return Collected(record, None, None)
    head = result.stdout.lstrip()[:16]
    if not head.startswith(b'{"nftables"'):
        shown = head.decode("utf-8", "replace") or "nothing"
        error = f"output is not nft JSON (starts with {shown!r}); nft 0.9.0 or later is needed for -j"
        record = SourceRecord(NFTABLES, record.command, False, error, record.seconds, required=Required.NFTABLES)
        return Collected(record, None, None)
    return Collected(record, None, result.stdout)
