"""`collect` against running the same dump commands by hand: 10,000 services x 4 endpoints.

As root: a generated node (iptables form, and the nftables form when the generator has it)
is loaded into a throwaway namespace; then, inside that namespace, in one run:
- `collect` through the Python API (every dump, host and kube-proxy facts, writing the
  snapshot), best of 3;
- the four `*-save` binaries and `nft -j list ruleset`, run one after another with
  subprocess, best of 3.
It prints both and their ratio (target: at most 1.3). Without root it says so and exits 0.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import can_use_kernel, in_namespace, namespace

SERVICES, ENDPOINTS, REPEAT = 10_000, 4, 3
TARGET = 1.3
DUMPS = (
    ["iptables-legacy-save"],
    ["iptables-nft-save"],
    ["ip6tables-legacy-save"],
    ["ip6tables-nft-save"],
    ["nft", "-j", "list", "ruleset"],
)


def inside(workdir: Path) -> dict[str, object]:
    """Runs inside the namespace: both timings (interleaved, best of 3), and the snapshot's per-source times."""
    from auditor.collect import collect

    manual: list[float] = []
    collected: list[float] = []
    sources: dict[str, float] = {}
    for i in range(REPEAT):
        start = time.perf_counter()
        for argv in DUMPS:
            if shutil.which(argv[0]):
                subprocess.run(argv, capture_output=True, check=True, timeout=300)
        manual.append(time.perf_counter() - start)
        start = time.perf_counter()
        snapshot = collect(workdir / f"snap-{i}")
        collected.append(time.perf_counter() - start)
        assert snapshot.complete, snapshot.incomplete_reasons()
        if collected[-1] == min(collected):
            sources = {name: r.seconds for name, r in snapshot.meta.sources.items()}
    size = sum(p.stat().st_size for p in (workdir / "snap-0").iterdir())
    return {"manual": min(manual), "collect": min(collected), "bytes": size, "sources": sources}


def prepare(ns: str) -> str:
    from auditor.model import IPFamily
    from auditor.synth.iptables import render_iptables
    from auditor.synth.spec import generate_node

    node = generate_node(SERVICES, ENDPOINTS, variety=False, nfacct=False)
    text = render_iptables(node, IPFamily.IPV4)
    in_namespace(ns, ["iptables-legacy-restore"], text.encode())
    rules = sum(1 for line in text.splitlines() if line.startswith("-A "))
    what = f"{rules:,} iptables-legacy rules"
    try:
        from auditor.synth.nftables import render_nft
    except ImportError:
        return what + " (no nftables generator: nft dump is empty)"
    in_namespace(ns, ["nft", "-f", "-"], render_nft(node, IPFamily.IPV4).encode())
    return what + " + the same node as table ip kube-proxy"


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--inside":
        print(json.dumps(inside(Path(sys.argv[2]))))
        return 0
    if not can_use_kernel("iptables-legacy-restore", "nft"):
        print("bench_collect: needs root (and iptables-legacy-restore, nft) to load rules into a namespace; skipped")
        return 0
    with namespace("kpa-bench-collect") as ns, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        what = prepare(ns)
        print(f"loaded {what} in {time.perf_counter() - start:.1f} s")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, __file__, "--inside", tmp],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    ratio = r["collect"] / r["manual"]
    print(
        f"{SERVICES:,} services x {ENDPOINTS} endpoints: dump commands by hand {r['manual']:.3f} s,"
        f" collect {r['collect']:.3f} s (snapshot {r['bytes'] / 1e6:.1f} MB), best of {REPEAT}"
    )
    slowest = sorted(r["sources"].items(), key=lambda kv: -kv[1])[:5]
    print("  collect's slowest sources: " + ", ".join(f"{name} {sec:.3f} s" for name, sec in slowest))
    print(f"collect / by hand = {ratio:.2f} (target <= {TARGET}){'' if ratio <= TARGET else '  ABOVE TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
