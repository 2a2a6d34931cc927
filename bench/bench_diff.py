"""`diff` at scale: two 10,000-service iptables snapshots of one node, the second with a few
changes (an endpoint gone, an affinity timeout, a Service gone, a NodePort moved).

Times, in the same process (best of 3): normalizing both dumps (parsed tables -> models),
and the diff of the two sides (keyed model diff, traced evidence for every difference,
mode probes). Prints the ratio; the target is diff <= 2 x normalize.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.diff.compare import Side, compare
from auditor.model import IPFamily
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import parse_iptables_save
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import NodeSpec, generate_node
from auditor.trace import IptablesTracer
from bench.common import best_of

SERVICES = 10_000


def changed(node: NodeSpec) -> NodeSpec:
    services = list(node.services)
    services[0] = replace(services[0], endpoints=services[0].endpoints[:-1])
    services[3] = replace(services[3], affinity_seconds=3600)
    services[1] = replace(services[1], node_port=services[1].node_port + 20000)
    del services[12]
    return replace(node, services=tuple(services))


def main() -> None:
    node = generate_node(SERVICES, 4)
    local = tuple(node.node_ips.values())
    dumps = [
        parse_iptables_save(render_iptables(n, IPFamily.IPV4), source=name)
        for n, name in ((node, "left"), (changed(node), "right"))
    ]
    normalize = best_of(lambda: [normalize_iptables([d]) for d in dumps], 3)
    left_model, right_model = (normalize_iptables([d]) for d in dumps)

    def run() -> int:
        left = Side("left", left_model, IptablesTracer([dumps[0]], local), local)
        right = Side("right", right_model, IptablesTracer([dumps[1]], local), local)
        return len(compare(left, right).differences)

    found = run()
    elapsed = best_of(run, 3)
    rules = sum(d.rule_count for d in dumps)
    print(f"{SERVICES} services x 2 snapshots ({rules} rules): normalize both {normalize * 1000:.0f} ms, diff {elapsed * 1000:.0f} ms ({found} differences)")
    print(f"diff / normalize = {elapsed / normalize:.2f} (target <= 2)")

    # a rule outside the model on one side: every frontend of that side is traced
    text = render_iptables(node, IPFamily.IPV4).replace(
        "\n-A PREROUTING ", f"\n-A PREROUTING -d {node.services[24].cluster_ip}/32 -p tcp -j DNAT --to-destination 10.99.0.1:80\n-A PREROUTING ", 1
    )
    third = parse_iptables_save(text, source="third-party")
    third_model = normalize_iptables([third])

    def run_third() -> int:
        left = Side("left", third_model, IptablesTracer([third], local), local)
        right = Side("right", right_model, IptablesTracer([dumps[1]], local), local)
        return len(compare(left, right).differences)

    found = run_third()
    elapsed = best_of(run_third, 1)
    print(f"with a third-party DNAT on one side (the frontends it can reach traced): diff {elapsed * 1000:.0f} ms ({found} differences),"
          f" diff / normalize = {elapsed / normalize:.2f}")


if __name__ == "__main__":
    main()
