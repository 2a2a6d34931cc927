"""The iptables state: the four `*-save` dumps, whichever backends are installed.

A binary that does not exist is "absent" (that backend is not installed), not a failure.
`iptables-nft-save` reads through nf_tables; when the kernel surely has no nf_tables it
is not run (it would load the module) and the source records why: such a node has no
iptables-nft rules. `iptables-nft-save` also prints "Table `nat' is incompatible, use 'nft'
tool." and exits 0 when a table holds rules it cannot show: that dump is kept but the
source is marked failed, since tables are missing from it.
"""

from __future__ import annotations

import re

from auditor.collect.facts import Modules
from auditor.collect.runner import Runner
from auditor.collect.sources import Collected, IptablesSave, Required, SourceRecord, from_command

_INCOMPATIBLE = re.compile(rb"Table `([^']+)' is incompatible, use 'nft' tool")
INSTALL_HINT = "install the iptables package"
NF_TABLES_ABSENT = "nf_tables is not loaded: the node has no nf_tables rules (not run: it would load the module)"


def collect_save(save: IptablesSave, runner: Runner, timeout: float, modules: Modules) -> Collected:
    """One `*-save` dump; `data` is its output when it produced one."""
    if save.backend == "nft" and modules.state("nf_tables") is False:
        record = SourceRecord(
            save.name, (save.name,), True, None, 0.0, note=NF_TABLES_ABSENT, required=Required.IPTABLES
        )
        return Collected(record, None, None)
    result = runner.run([save.name], timeout)
    record = from_command(save.name, result, file=save.file, required=Required.IPTABLES, absent_ok=True)
    if not result.ok:
        return Collected(record, None, None)
    incompatible = [m.decode("utf-8", "replace") for m in _INCOMPATIBLE.findall(result.stdout)]
    if incompatible:
        family = "ip6" if save.ipv6 else "ip"
        error = (
            f"table(s) {', '.join(incompatible)} left out: {save.name} reports them incompatible (they hold nft rules"
            f" iptables cannot show); read them with `nft list table {family} {incompatible[0]}`"
        )
        record = SourceRecord(
            save.name, record.command, False, error, record.seconds, file=save.file, required=Required.IPTABLES
        )
    return Collected(record, None, result.stdout)
