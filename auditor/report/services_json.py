"""The `kp-audit.services/v1` JSON contract: a `ServiceModel` as plain data.

Later tools and CI read these names; fields may be added, never renamed. Probabilities are
rounded to 6 decimals so the same input always gives byte-identical output.
"""

from __future__ import annotations

import json
from typing import Any

from auditor.model import Endpoint, Frontend, ServiceModel, ServicePort, Unmodelled

SCHEMA = "kp-audit.services/v1"


def endpoint_data(endpoint: Endpoint) -> dict[str, Any]:
    return {"address": endpoint.address, "port": endpoint.port, "probability": round(endpoint.probability, 6)}


def frontend_data(frontend: Frontend) -> dict[str, Any]:
    return {
        "kind": frontend.kind.value,
        "address": frontend.address,
        "port": frontend.port,
        "result": frontend.result.value,
        "endpoints": [endpoint_data(e) for e in frontend.endpoints],
        "affinity_seconds": frontend.affinity_seconds,
        "source_ranges": list(frontend.source_ranges),
        "local_only": frontend.local_only,
        "masquerade": frontend.masquerade.value,
        "short_circuit": frontend.short_circuit,
        "kind_certain": frontend.kind_certain,
    }


def service_data(service: ServicePort) -> dict[str, Any]:
    return {
        "name": service.name,
        "protocol": service.protocol.value,
        "family": service.family.value,
        "frontends": [frontend_data(f) for f in service.frontends],
    }


def unmodelled_data(item: Unmodelled) -> dict[str, Any]:
    return {
        "table": item.table,
        "chain": item.chain,
        "line": item.line,
        "rule": item.rule,
        "reason": item.reason,
        "source": item.source,
    }


def services_document(model: ServiceModel) -> dict[str, Any]:
    """The whole `kp-audit.services/v1` document."""
    return {
        "schema": SCHEMA,
        "mode": model.mode.value,
        "families": [f.value for f in model.families],
        "node_port_addresses": list(model.node_port_addresses),
        "localhost_node_ports": model.localhost_node_ports,
        "health_check_node_ports": [
            {"port": h.port, "service": h.service, "family": h.family.value} for h in model.health_check_node_ports
        ],
        "local_traffic": list(model.local_traffic),
        "services": [service_data(s) for s in model.services],
        "unmodelled": [unmodelled_data(u) for u in model.unmodelled],
        "coverage": {
            "rules_seen": model.rules_seen,
            "rules_modelled": model.rules_modelled,
            "ratio": round(model.coverage, 6),
        },
    }


def render_services_json(model: ServiceModel) -> str:
    return json.dumps(services_document(model), indent=2) + "\n"
