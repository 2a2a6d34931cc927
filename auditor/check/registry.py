"""Every check kp-audit runs, by ID: adding a check is one module and one line here."""

from __future__ import annotations

from auditor.check.base import Check
from auditor.check.checks.kpa001_kernel_too_old import KernelTooOld
from auditor.check.checks.kpa002_conntrack_workaround_lost import ConntrackWorkaroundLost
from auditor.check.checks.kpa003_kernel_check_bypassed import KernelCheckBypassed
from auditor.check.checks.kpa004_host_nft_missing_or_old import HostNftMissingOrOld
from auditor.check.checks.kpa005_host_nft_newer_than_kube_proxy import HostNftNewerThanKubeProxy
from auditor.check.checks.kpa006_kube_proxy_too_old import KubeProxyTooOld
from auditor.check.checks.kpa007_kernel_features_missing import KernelFeaturesMissing
from auditor.check.checks.kpa008_nodeports_stop_answering import NodePortsStopAnswering
from auditor.check.checks.kpa009_localhost_nodeports_in_use import LocalhostNodePortsInUse
from auditor.check.checks.kpa010_config_stops_applying import ConfigStopsApplying
from auditor.check.checks.kpa011_host_firewall_blocks_services import HostFirewallBlocksServices
from auditor.check.checks.kpa012_third_party_uses_kube_proxy_chains import ThirdPartyUsesKubeProxyChains
from auditor.check.checks.kpa013_addon_not_ready_for_nftables import AddonNotReadyForNftables
from auditor.check.checks.kpa014_both_iptables_backends_hold_kube_rules import BothIptablesBackendsHoldKubeRules
from auditor.check.checks.kpa015_leftovers_from_other_mode import LeftoversFromOtherMode
from auditor.check.checks.kpa016_rules_not_modelled import RulesNotModelled
from auditor.check.checks.kpa017_conntrack_not_loaded import ConntrackNotLoaded
from auditor.check.checks.kpa018_proxy_mode_not_pinned import ProxyModeNotPinned
from auditor.check.checks.kpa019_clusterip_hardening import ClusterIPHardening
from auditor.check.checks.kpa020_etp_local_pod_traffic import EtpLocalPodTrafficDropped
from auditor.check.checks.kpa021_large_cluster_sync import LargeClusterSlowSync
from auditor.check.checks.kpa022_iptables_metrics_disappear import IptablesMetricsDisappear
from auditor.check.checks.kpa023_route_localnet_left_on import RouteLocalnetLeftOn
from auditor.check.checks.kpa024_old_iptables_save import OldIptablesSave
from auditor.check.checks.kpa025_local_traffic_detector import LocalTrafficDetectorMissing
from auditor.check.checks.kpa026_nftables_only_host import NftablesOnlyHost
from auditor.check.checks.kpa027_rollback_plan import RollbackPlan
from auditor.findings import CheckID

#: the check catalogue's version: printed in every report; bump when checks change meaning
CATALOGUE_VERSION = "2026.11.1"

REGISTRY: dict[CheckID, type[Check]] = {
    CheckID("KPA-001"): KernelTooOld,
    CheckID("KPA-002"): ConntrackWorkaroundLost,
    CheckID("KPA-003"): KernelCheckBypassed,
    CheckID("KPA-004"): HostNftMissingOrOld,
    CheckID("KPA-005"): HostNftNewerThanKubeProxy,
    CheckID("KPA-006"): KubeProxyTooOld,
    CheckID("KPA-007"): KernelFeaturesMissing,
    CheckID("KPA-008"): NodePortsStopAnswering,
    CheckID("KPA-009"): LocalhostNodePortsInUse,
    CheckID("KPA-010"): ConfigStopsApplying,
    CheckID("KPA-011"): HostFirewallBlocksServices,
    CheckID("KPA-012"): ThirdPartyUsesKubeProxyChains,
    CheckID("KPA-013"): AddonNotReadyForNftables,
    CheckID("KPA-014"): BothIptablesBackendsHoldKubeRules,
    CheckID("KPA-015"): LeftoversFromOtherMode,
    CheckID("KPA-016"): RulesNotModelled,
    CheckID("KPA-017"): ConntrackNotLoaded,
    CheckID("KPA-018"): ProxyModeNotPinned,
    CheckID("KPA-019"): ClusterIPHardening,
    CheckID("KPA-020"): EtpLocalPodTrafficDropped,
    CheckID("KPA-021"): LargeClusterSlowSync,
    CheckID("KPA-022"): IptablesMetricsDisappear,
    CheckID("KPA-023"): RouteLocalnetLeftOn,
    CheckID("KPA-024"): OldIptablesSave,
    CheckID("KPA-025"): LocalTrafficDetectorMissing,
    CheckID("KPA-026"): NftablesOnlyHost,
    CheckID("KPA-027"): RollbackPlan,
}
