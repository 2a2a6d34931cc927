"""`kp-audit services SNAPSHOT [--mode iptables|nftables]`: the Service model from a snapshot.

Called by `kp-audit services` (auditor/cli/services.py) when a SNAPSHOT argument is given.
"""

from __future__ import annotations

from auditor.collect.models import snapshot_model
from auditor.collect.snapshot import read_snapshot
from auditor.errors import InputError
from auditor.model import ProxyMode, ServiceModel

USAGE_SOURCE = "kp-audit services"


def snapshot_services_model(snapshot: str, mode: ProxyMode | str | None = None) -> ServiceModel:
    """The model of `mode` (default: the mode kube-proxy runs in) from a snapshot directory or .tar.gz."""
    return snapshot_model(read_snapshot(snapshot), None if mode is None else ProxyMode(mode))


def services_model_from_args(
    snapshot: str | None, mode: ProxyMode | str | None, file_inputs: bool
) -> ServiceModel | None:
    """The model when a SNAPSHOT was given, None when the command reads files instead.

    `file_inputs`: --iptables-save, --ip6tables-save or --nft-json was given too (an error
    with a SNAPSHOT). --mode without a SNAPSHOT is an error.
    """
    if snapshot is None:
        if mode is not None:
            raise InputError(USAGE_SOURCE, "--mode applies to a SNAPSHOT; with files, the file options choose the mode")
        return None
    if file_inputs:
        raise InputError(USAGE_SOURCE, "give a SNAPSHOT or --iptables-save/--ip6tables-save/--nft-json files, not both")
    return snapshot_services_model(snapshot, mode)
