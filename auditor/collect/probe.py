"""Does this kernel (and this nft) support everything kube-proxy's nftables mode uses?

Module lists and kernel configs say what *should* work; this asks the kernel. Each
feature is a small kube-proxy-shaped table that `nft --check` validates, run inside a
private network namespace (`unshare -n`): `--check` never commits, and the namespace means
that even a misbehaving nft could only touch a throwaway ruleset. One batch per feature,
so a failure names the feature instead of "something in the table".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

#: what every feature batch starts from
_BASE = "add table ip kpa-probe\nadd chain ip kpa-probe c\n"


@dataclass(frozen=True)
class Feature:
    """One capability kube-proxy relies on, the nft batch that exercises it, and what provides it."""

    name: str
    batch: str
    provides: str


FEATURES: tuple[Feature, ...] = (
    Feature("nf_tables", _BASE, "CONFIG_NF_TABLES, nf_tables module; nft >= 1.0.1"),
    Feature("ip6 family", "add table ip6 kpa-probe\nadd chain ip6 kpa-probe c\n", "CONFIG_NF_TABLES_IPV6"),
    Feature(
        "object comments",
        'add table ip kpa-probe { comment "rules for kube-proxy" ; }\n'
        'add chain ip kpa-probe c { comment "helper" ; }\n',
        "kernel 5.10+ and nft 0.9.7+ (kube-proxy falls back to no comments)",
    ),
    Feature(
        "verdict map with concatenation",
        _BASE
        + "add map ip kpa-probe m { type ipv4_addr . inet_proto . inet_service : verdict ; }\n"
        + "add rule ip kpa-probe c ip daddr . meta l4proto . th dport vmap @m\n"
        + 'add element ip kpa-probe m { 10.96.0.1 . tcp . 80 comment "ns/svc:http" : goto c }\n',
        "nft_concat support (kernel 5.6+), nft_objref, element comments",
    ),
    Feature(
        "sets and prefixes",
        _BASE
        + "add set ip kpa-probe s { type ipv4_addr ; }\n"
        + "add rule ip kpa-probe c ip daddr @s drop\n"
        + "add rule ip kpa-probe c ip daddr != { 10.0.0.0/8 } drop\n",
        "nft_set_hash / nft_set_rbtree (CONFIG_NFT_SET_*)",
    ),
    Feature(
        "numgen",
        _BASE
        + "add chain ip kpa-probe e\nadd rule ip kpa-probe c numgen random mod 2 vmap { 0 : goto e , 1 : goto e }\n",
        "CONFIG_NFT_NUMGEN (nft_numgen)",
    ),
    Feature(
        "fib",
        _BASE
        + "add rule ip kpa-probe c fib saddr type local jump c\nadd rule ip kpa-probe c fib daddr type local accept\n",
        "CONFIG_NFT_FIB_IPV4 / CONFIG_NFT_FIB_IPV6 (nft_fib_ipv4, nft_fib_ipv6)",
    ),
    Feature(
        "conntrack state",
        _BASE + "add rule ip kpa-probe c ct state new accept\n",
        "CONFIG_NFT_CT (nft_ct) and nf_conntrack",
    ),
    Feature(
        "dnat",
        "add table ip kpa-probe\nadd chain ip kpa-probe n { type nat hook prerouting priority -100 ; }\n"
        + "add rule ip kpa-probe n meta l4proto tcp dnat to 10.0.0.1:80\n",
        "CONFIG_NFT_NAT and nf_nat (nft_chain_nat)",
    ),
    Feature(
        "masquerade",
        "add table ip kpa-probe\nadd chain ip kpa-probe p { type nat hook postrouting priority 100 ; }\n"
        + "add rule ip kpa-probe p masquerade fully-random\n",
        "CONFIG_NFT_MASQ (nft_masq)",
    ),
    Feature(
        "reject",
        "add table ip kpa-probe\nadd chain ip kpa-probe f { type filter hook input priority 0 ; }\n"
        + "add rule ip kpa-probe f reject\n",
        "CONFIG_NFT_REJECT (nft_reject, nft_reject_ipv4/ipv6 or nft_reject_inet)",
    ),
    Feature(
        "dynamic set with timeout",
        _BASE
        + "add set ip kpa-probe a { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }\n"
        + "add rule ip kpa-probe c update @a { ip saddr }\n",
        "dynamic sets (nft_dynset) with timeouts",
    ),
    Feature(
        "mark",
        _BASE
        + "add rule ip kpa-probe c meta mark set meta mark or 0x4000\nadd rule ip kpa-probe c meta mark and 0x4000 == 0 return\n",
        "nft_meta (mark get/set)",
    ),
)


@dataclass(frozen=True)
class FeatureResult:
    name: str
    ok: bool
    provides: str
    error: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """Whether the probe could run at all, and the verdict for each feature."""

    ran: bool
    reason: str | None
    nft: str | None
    features: tuple[FeatureResult, ...] = ()
    seconds: float = 0.0

    @property
    def missing(self) -> tuple[FeatureResult, ...]:
        return tuple(f for f in self.features if not f.ok)

    def to_json(self) -> dict[str, object]:
        return {
            "ran": self.ran,
            "reason": self.reason,
            "nft": self.nft,
            "seconds": round(self.seconds, 3),
            "features": {f.name: {"ok": f.ok, "provides": f.provides, "error": f.error} for f in self.features},
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProbeResult:
        features = data.get("features") or {}
        assert isinstance(features, dict)
        return cls(
            ran=bool(data.get("ran")),
            reason=str(data["reason"]) if data.get("reason") is not None else None,
            nft=str(data["nft"]) if data.get("nft") is not None else None,
            seconds=float(data.get("seconds") or 0.0),  # type: ignore[arg-type]
            features=tuple(
                FeatureResult(name, bool(v.get("ok")), str(v.get("provides") or ""), v.get("error"))
                for name, v in features.items()
                if isinstance(v, dict)
            ),
        )


#: runs argv with the batch on stdin; returns (returncode, stderr text)
BatchRunner = Callable[[list[str], str, float], tuple[int, str]]


def _subprocess_runner(argv: list[str], batch: str, timeout: float) -> tuple[int, str]:
    proc = subprocess.run(argv, input=batch.encode(), capture_output=True, timeout=timeout)
    return proc.returncode, proc.stderr.decode(errors="replace")


def probe_features(
    nft: str | None = None,
    *,
    run: BatchRunner = _subprocess_runner,
    isolate: bool = True,
    timeout: float = 10.0,
) -> ProbeResult:
    """Check every feature with `nft --check`; `isolate` wraps each run in `unshare -n`."""
    start = time.monotonic()
    nft = nft or shutil.which("nft") or next((p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None)
    if nft is None:
        return ProbeResult(False, "nft not found on PATH (install the nftables package)", None)
    prefix: list[str] = []
    if isolate:
        unshare = shutil.which("unshare")
        if unshare is None:
            return ProbeResult(False, "unshare not found (util-linux); the probe only runs in a private namespace", nft)
        if os.geteuid() != 0:
            return ProbeResult(False, "needs root to create a private network namespace (unshare -n)", nft)
        prefix = [unshare, "-n"]
    results = []
    for feature in FEATURES:
        try:
            code, stderr = run([*prefix, nft, "--check", "-f", "-"], feature.batch, timeout)
        except subprocess.TimeoutExpired:
            code, stderr = -1, f"timed out after {timeout:.0f}s"
        except OSError as exc:
            return ProbeResult(
                False, f"could not run {nft}: {exc.strerror or exc}", nft, seconds=time.monotonic() - start
            )
        error = None if code == 0 else (_first_error(stderr) or f"nft exited with {code}")
        results.append(FeatureResult(feature.name, code == 0, feature.provides, error))
    if results and not results[0].ok and not any(r.ok for r in results[1:]):
        # nothing works at all: say that once rather than blaming every feature
        return ProbeResult(
            True, f"nf_tables is unusable here: {results[0].error}", nft, tuple(results), time.monotonic() - start
        )
    return ProbeResult(True, None, nft, tuple(results), time.monotonic() - start)


def _first_error(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.strip():
            return line.strip()[:300]
    return None
