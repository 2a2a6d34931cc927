"""iptables mode at scale: 1,000 and 10,000 services x 4 endpoints (about 140,000 rules).

Reference: reading the same file and splitting it into lines, in the same process.
Prints, for each size: the normalizer's time (parsed tables -> model) over the reference,
and the whole path (file -> parsed tables -> model) over the reference; then the growth
from 1,000 to 10,000 services (linear is about 10). Both sizes take the best of the same
number of rounds, and each round times both, so the growth compares like with like.

For scale it also times a lower bound: creating the model's objects alone (each Endpoint,
Frontend, RuleRef and ServicePort, from the finished model's values), which any normalizer
that returns this model pays whatever else it does; its growth shows how far this machine's
memory alone bends a linear cost.

As root, the dump is what a kernel prints: the generated rules are restored into a
throwaway namespace and read back with iptables-legacy-save. Otherwise it is the
generator's kube-proxy-style text.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.gc_pause import paused_gc
from auditor.model import Endpoint, Frontend, IPFamily, RuleRef, ServiceModel, ServicePort
from auditor.normalize.iptables import normalize_iptables
from auditor.parse.iptables_save import IptablesDump, read_iptables_save
from auditor.synth.iptables import render_iptables
from auditor.synth.spec import generate_node
from bench.common import best_of, can_use_kernel, in_namespace, namespace


def make_dump(services: int, directory: Path) -> tuple[Path, str]:
    text = render_iptables(generate_node(services, 4, variety=False, nfacct=False), IPFamily.IPV4)
    origin = "generator text"
    if can_use_kernel("iptables-legacy-restore"):
        with namespace() as ns:
            in_namespace(ns, ["iptables-legacy-restore"], text.encode())
            text = in_namespace(ns, ["iptables-legacy-save"]).decode()
        origin = "iptables-legacy-save of a namespace"
    path = directory / f"iptables-{services}.txt"
    path.write_text(text)
    return path, origin


def rebuild_objects(model: ServiceModel) -> list[ServicePort]:
    """The model's objects made again from its values: a floor for any normalizer."""
    with paused_gc():
        return [
            ServicePort(
                svc.name,
                svc.protocol,
                svc.family,
                tuple(
                    Frontend(
                        f.kind,
                        f.address,
                        f.port,
                        f.result,
                        tuple([Endpoint(e.address, e.port, e.probability) for e in f.endpoints]),
                        f.affinity_seconds,
                        f.source_ranges,
                        f.local_only,
                        f.masquerade,
                        f.short_circuit,
                        f.kind_certain,
                        tuple([RuleRef(r.table, r.chain, r.line, r.rule, r.source) for r in f.origin]),
                    )
                    for f in svc.frontends
                ),
            )
            for svc in model.services
        ]


def file_to_model(path: Path) -> tuple[IptablesDump, ServiceModel]:
    """The whole path. The parsed dump is returned with the model, so that freeing it is not
    timed, as freeing the reference's lines is not."""
    dump = read_iptables_save(str(path))
    return dump, normalize_iptables([dump])


def subjects(path: Path) -> tuple[int, dict[str, Callable[[], object]]]:
    """The dump's rule count, and what is timed for it: the reference and the code under test."""
    dump = read_iptables_save(str(path))
    model = normalize_iptables([dump])
    assert rebuild_objects(model) == list(model.services)
    assert model.coverage == 1.0 and len(model.services) > 0
    return dump.rule_count, {
        "reference": lambda: path.read_text().splitlines(),
        "parse": lambda: read_iptables_save(str(path)),
        "normalize": lambda: normalize_iptables([dump]),
        "whole": lambda: file_to_model(path),
        "objects": lambda: rebuild_objects(model),
    }


def measure(paths: dict[int, Path], repeat: int) -> dict[int, dict[str, float]]:
    """Best times per size. Each round times every subject of every size once, so that a
    slow spell of the machine hits the reference and the code under test, and the small
    and the large dump, alike."""
    timed = {size: subjects(path) for size, path in paths.items()}
    best = {size: dict.fromkeys(fns, float("inf")) for size, (_, fns) in timed.items()}
    for _ in range(repeat):
        for size, (_, fns) in timed.items():
            for name, fn in fns.items():
                best[size][name] = min(best[size][name], best_of(fn, 1))
    return {size: {"rules": rules, **best[size]} for size, (rules, _) in timed.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        made = {services: make_dump(services, Path(tmp)) for services in (1_000, 10_000)}
        results = measure({services: path for services, (path, _) in made.items()}, repeat=7)
    for services, r in results.items():
        print(
            f"{services:>6} services: {int(r['rules']):>7} rules ({made[services][1]}); read+split {r['reference'] * 1000:.1f} ms,"
            f" parse {r['parse'] * 1000:.0f} ms, normalize {r['normalize'] * 1000:.0f} ms,"
            f" file->model {r['whole'] * 1000:.0f} ms"
        )
        print(
            f"        normalizer / read+split = {r['normalize'] / r['reference']:.1f};"
            f" file->model / read+split = {r['whole'] / r['reference']:.1f};"
            f" lower bound, the model's objects alone / read+split = {r['objects'] / r['reference']:.1f}"
        )
    small, large = results[1_000], results[10_000]
    print(
        f"growth 1,000 -> 10,000 services: normalizer x{large['normalize'] / small['normalize']:.1f},"
        f" file->model x{large['whole'] / small['whole']:.1f}, the model's objects alone"
        f" x{large['objects'] / small['objects']:.1f} (linear: about 10)"
    )


if __name__ == "__main__":
    main()
