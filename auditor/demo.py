"""The embedded demo node: a throwaway network namespace holding a realistic iptables-mode
kube-proxy state, audited with `kp-audit scan` from inside it. Without root, the recorded
snapshot under fixtures/ is audited instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from auditor.model import IPFamily
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import NodeSpec, generate_node

REPO = Path(__file__).resolve().parent.parent
RECORDED_SNAPSHOT = REPO / "fixtures" / "demo-snapshot"
#: kube-proxy's config on the demo node: iptables mode, localhost NodePorts, a pod CIDR
DEMO_CONFIG = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clusterCIDR: 10.0.0.0/8
iptables:
  localhostNodePorts: true
  masqueradeBit: 14
"""
#: the demo node's addresses: a primary and a secondary (NodePorts stop answering there)
ADDRESSES = ("192.168.0.2/24", "192.168.5.10/24")
TARGET_VERSION = "1.33.4"
DEMO_CONFIG_NAME = "kube-proxy.yaml"


def demo_node() -> NodeSpec:
    """A dozen Service ports: every frontend kind, affinity, Local policies, no endpoints, UDP, SCTP."""
    return generate_node(12, 2, families=(IPFamily.IPV4,))


def can_build_namespace() -> str | None:
    """Why the live demo cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", "iptables-nft-restore", "nfacct", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@contextmanager
def demo_namespace() -> Iterator[str]:
    """A namespace loaded with the demo node's state; deleted on the way out, whatever happens."""
    name = f"kpa-demo-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run = ["ip", "netns", "exec", name]
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        # a veth pair inside the namespace: dummy interfaces are not available on every kernel
        subprocess.run(["ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"], check=True)
        for address in ADDRESSES:
            subprocess.run(["ip", "-n", name, "addr", "add", address, "dev", "eth0"], check=True)
        for link in ("eth0", "eth1"):
            subprocess.run(["ip", "-n", name, "link", "set", link, "up"], check=True)
        subprocess.run([*run, "sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"], check=True)
        for counter in ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"):
            subprocess.run([*run, "nfacct", "add", counter], check=True, capture_output=True)
        state = render_iptables(demo_node(), IPFamily.IPV4).encode()
        subprocess.run([*run, "iptables-nft-restore"], input=state, check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def scan_in_namespace(name: str, snapshot: Path, workdir: Path, extra: list[str]) -> int:
    """Run `kp-audit scan` inside the demo namespace from `workdir`; returns its exit code.

    kube-proxy's config is written there and passed by its bare name, so the reports' evidence
    names `kube-proxy.yaml`, not a temporary path that is gone once the demo ends.
    """
    (workdir / DEMO_CONFIG_NAME).write_text(DEMO_CONFIG)
    argv = [
        "ip", "netns", "exec", name, sys.executable, "-m", "auditor", "scan", "--quiet",
        "--keep-snapshot", str(snapshot.resolve()), "--kube-proxy-config", DEMO_CONFIG_NAME,
        "--target-version", TARGET_VERSION, *extra,
    ]
    # the package is found from any directory, installed or not
    path = os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH"))))
    return subprocess.run(argv, cwd=workdir, env={**os.environ, "PYTHONPATH": path}).returncode
