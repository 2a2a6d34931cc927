"""KPA-018: kube-proxy's mode is not set explicitly.

What it checks: the mode as configured: `mode` in the KubeProxyConfiguration (or /configz),
else `--proxy-mode` (flags are ignored when a config file is used). Empty or absent means
"the default".

Why it matters: today an empty mode means iptables on Linux. KEP-5343 (provisional) plans
warnings from 1.37 and nftables as the default in 1.40, so an unset mode would silently
flip on a kube-proxy upgrade instead of in a planned switch.

Remediation: pin the mode, in either direction: `mode: iptables` until the switch,
`mode: nftables` after it (or `--proxy-mode`).

References: kube-proxy config API (ProxyMode),
https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/5343-nftables-to-default
"""

from __future__ import annotations

from auditor.check.base import Check, Outcome
from auditor.check.context import CheckContext
from auditor.check.settings import config_file_in_use, config_value, flag_value
from auditor.findings import CheckID, Evidence, Severity


class ProxyModeNotPinned(Check):
    id = CheckID("KPA-018")
    title = "kube-proxy's mode is not set explicitly"
    severity = Severity.INFO
    remediation = (
        "Set mode: iptables (until the switch) or mode: nftables in the KubeProxyConfiguration, or --proxy-mode."
    )
    docs = "https://github.com/kubernetes/enhancements/tree/master/keps/sig-network/5343-nftables-to-default"

    def run(self, ctx: CheckContext) -> Outcome:
        setting, evidence = _configured_mode(ctx)
        if setting is None:
            return self.not_applicable("kube-proxy's configuration (or, without one, its flags) is not in the snapshot")
        if setting:
            return self.passed(f"kube-proxy's mode is set explicitly to {setting}", evidence)
        return self.info(
            "kube-proxy's mode is unset, so it follows the default: iptables today, nftables from 1.40 if KEP-5343"
            " lands as planned; pin it so the mode only changes when you switch it",
            evidence,
        )


def _configured_mode(ctx: CheckContext) -> tuple[str | None, Evidence]:
    """The mode as written ("" when unset), None when nothing shows how kube-proxy was configured."""
    recorded = ctx.kube_proxy.get("mode_setting")
    if isinstance(recorded, str):
        return recorded, Evidence("configured mode", recorded or "(unset)", "host.json: kube_proxy.mode_setting")
    if config_file_in_use(ctx):
        if ctx.kube_proxy_config is None:
            return None, Evidence("mode", None, "host.json: kube_proxy.config")
        found = config_value(ctx, "mode")
        return (found.text if found else ""), (
            found.evidence() if found else Evidence("mode", "(absent)", "host.json: kube_proxy.config")
        )
    flag = flag_value(ctx, "proxy-mode")
    if flag is not None:
        return flag.text, flag.evidence()
    if ctx.kube_proxy_running and ctx.kube_proxy_flags:
        return "", Evidence("--proxy-mode", "(absent)", "host.json: kube_proxy.flags")
    return None, Evidence("mode", None, "host.json: kube_proxy")
