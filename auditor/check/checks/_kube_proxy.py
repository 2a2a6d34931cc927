"""Shared readers for the checks: kube-proxy's version and mode, and the Service model.

Settings (config file vs flags) are read through `auditor.check.settings`.

Each reader returns the value together with the `Evidence` that says where it came from,
so every check cites the same source the same way.
"""

from __future__ import annotations

from auditor.check.context import CheckContext
from auditor.findings import Evidence
from auditor.model import ProxyMode, ServiceModel
from auditor.versions import Version

#: KEP-3866, nftables mode
KEP_3866 = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/3866-nftables-proxy"
#: kube-proxy releases that know `--proxy-mode nftables` (alpha in 1.29)
NFTABLES_MODE_SINCE = Version(1, 29)


def planned_version(ctx: CheckContext) -> tuple[Version | None, Evidence]:
    """The kube-proxy version that will run nftables mode: --target-version, else today's."""
    planned = ctx.planned_version
    source = "--target-version" if ctx.target_version else "host.json: kube_proxy.version"
    return planned, Evidence("kube-proxy version (planned)", str(planned) if planned else None, source)


def running_version(ctx: CheckContext) -> tuple[Version | None, Evidence]:
    """The version of the kube-proxy found on the node (not --target-version)."""
    version = ctx.kube_proxy_version
    raw = ctx.kube_proxy.get("version")
    return version, Evidence("kube-proxy version (running)", str(raw) if raw else None, "host.json: kube_proxy.version")


def running_mode(ctx: CheckContext) -> tuple[str | None, Evidence]:
    """The mode kube-proxy runs in now ("iptables", "nftables", "ipvs", ...), None when unknown."""
    if ctx.current_mode is not None:
        return ctx.current_mode.value, Evidence("kube-proxy mode", ctx.current_mode.value, "snapshot: current mode")
    mode = ctx.kube_proxy.get("mode")
    if isinstance(mode, str) and mode:
        where = ctx.kube_proxy.get("mode_source") or "kube_proxy.mode"
        return mode, Evidence("kube-proxy mode", mode, f"host.json: {where}")
    return None, Evidence("kube-proxy mode", None, "host.json: kube_proxy.mode")


def service_model(ctx: CheckContext) -> ServiceModel | None:
    """The model describing today's Services: iptables mode's when present, else nftables mode's."""
    return ctx.models.get(ProxyMode.IPTABLES) or ctx.models.get(ProxyMode.NFTABLES)


def model_source(model: ServiceModel) -> str:
    """Where a model's rules came from, for messages ("the iptables-mode rules")."""
    return f"the {model.mode.value}-mode rules"
