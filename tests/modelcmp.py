"""Compare Service models the way the contract does: by key, probabilities to 6 decimals."""

from __future__ import annotations

import json
from typing import Any

from auditor.model import ServiceModel
from auditor.report.services_json import services_document


def service_map(model: ServiceModel) -> dict[str, Any]:
    """{"name proto family": [frontend dicts]} from the JSON contract (rounded probabilities)."""
    doc = services_document(model)
    return {f"{s['name']} {s['protocol']} {s['family']}": s["frontends"] for s in doc["services"]}


def assert_same_services(actual: ServiceModel, expected: ServiceModel, ignore: tuple[str, ...] = ()) -> None:
    """Every Service, frontend and endpoint equal; `ignore` names frontend fields to skip."""
    got, want = service_map(actual), service_map(expected)
    assert sorted(got) == sorted(want), (
        f"service ports differ: only actual {sorted(set(got) - set(want))}, only expected {sorted(set(want) - set(got))}"
    )
    for key in want:
        a = [{k: v for k, v in f.items() if k not in ignore} for f in got[key]]
        e = [{k: v for k, v in f.items() if k not in ignore} for f in want[key]]
        assert a == e, f"{key} differs:\nactual   {json.dumps(a, indent=1)}\nexpected {json.dumps(e, indent=1)}"


def assert_same_node_facts(actual: ServiceModel, expected: ServiceModel) -> None:
    assert actual.node_port_addresses == expected.node_port_addresses
    assert actual.localhost_node_ports == expected.localhost_node_ports
    assert [(h.port, h.service, h.family) for h in actual.health_check_node_ports] == [
        (h.port, h.service, h.family) for h in expected.health_check_node_ports
    ]
    assert actual.local_traffic == expected.local_traffic
    assert actual.families == expected.families
