"""kube-proxy's metrics server: /proxyMode, /configz and /metrics over plain HTTP, with a deadline.

kube-proxy serves all three on its metrics address (default 127.0.0.1:10249). A port that
does not answer costs at most `timeout` seconds: after a failed first request the other
two are not tried. Proxies from the environment are never used (http.client, not urllib).
"""

from __future__ import annotations

import http.client
import json
import math
import re
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_METRICS_ADDRESS = "127.0.0.1:10249"
DEFAULT_METRICS_PORT = 10249
#: metric families later checks read
KEPT_FAMILIES = ("kubeproxy_",)
KEPT_NAMES = ("kubernetes_build_info",)
_MAX_BODY = 8 * 1024 * 1024
_GIT_VERSION = re.compile(r'git_?[vV]ersion="([^"]*)"')


@dataclass(frozen=True)
class Probe:
    """What the metrics server answered; `error` is the first failure, one line."""

    address: str
    proxy_mode: str | None = None
    configz: dict[str, Any] | None = None
    metrics: dict[str, float | str] | None = None
    error: str | None = None
    #: the server answered at least one request
    answered: bool = False
    seconds: float = 0.0


def connect_address(bind: str | None, port_flag: str | None = None) -> str:
    """Where to connect for a metrics bind address: "0.0.0.0:10249" -> "127.0.0.1:10249"."""
    text = (bind or "").strip()
    if not text:
        text = DEFAULT_METRICS_ADDRESS
    host, port = _split_host_port(text)
    if port is None:
        port = int(port_flag) if port_flag and port_flag.isdigit() else DEFAULT_METRICS_PORT
    if "/" in host:  # a CIDR (newer kube-proxy): the unspecified address of that family
        host = "::" if ":" in host else "0.0.0.0"
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_host_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port) if port.isdigit() else None
    return text, None  # a bare IPv4 or IPv6 address


def probe(address: str, timeout: float = 1.0) -> Probe:
    """GET /proxyMode, /configz and /metrics from `address` ("host:port" or "[v6]:port")."""
    start = time.monotonic()
    host, port = _split_host_port(address)
    if port is None:
        return Probe(address, error=f"{address}: no port")
    status, body, error = _get(host, port, "/proxyMode", timeout)
    if error is not None:
        return Probe(address, error=f"http://{address}/proxyMode: {error}", seconds=time.monotonic() - start)
    errors: list[str] = []
    proxy_mode = None
    if status == 200 and re.fullmatch(rb"\s*[a-z]+\s*", body):
        proxy_mode = body.decode().strip()
    else:
        errors.append(f"http://{address}/proxyMode: HTTP {status}")
    configz = None
    status, body, error = _get(host, port, "/configz", timeout)
    if error is None and status == 200:
        try:
            loaded = json.loads(body)
            configz = loaded if isinstance(loaded, dict) else None
        except ValueError:
            errors.append(f"http://{address}/configz: not JSON")
    else:
        errors.append(f"http://{address}/configz: {error or f'HTTP {status}'}")
    metrics = None
    status, body, error = _get(host, port, "/metrics", timeout)
    if error is None and status == 200:
        metrics = parse_metrics(body.decode("utf-8", "replace"))
    else:
        errors.append(f"http://{address}/metrics: {error or f'HTTP {status}'}")
    return Probe(
        address,
        proxy_mode=proxy_mode,
        configz=configz,
        metrics=metrics,
        error="; ".join(errors) or None,
        answered=True,
        seconds=time.monotonic() - start,
    )


def _get(host: str, port: int, path: str, timeout: float) -> tuple[int, bytes, str | None]:
    """(status, body, None), or (0, b"", one-line error) when there was no answer in time."""
    deadline = time.monotonic() + timeout
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "text/plain, application/json"})
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_BODY:
            if time.monotonic() > deadline:
                return 0, b"", f"no complete answer within {timeout:g} s"
            chunk = response.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return response.status, b"".join(chunks), None
    except TimeoutError:
        return 0, b"", f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return 0, b"", "connection refused (nothing listens there)"
    except (OSError, http.client.HTTPException) as exc:
        return 0, b"", f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
    finally:
        conn.close()


def parse_metrics(text: str) -> dict[str, float | str]:
    """The kept samples of Prometheus text: "name{labels}" -> value (non-finite values as text)."""
    out: dict[str, float | str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        if not (line.startswith(KEPT_FAMILIES) or line.startswith(KEPT_NAMES)):
            continue
        key, rest = _split_sample(line)
        if key is None:
            continue
        name = key.split("{", 1)[0]
        if not (name.startswith(KEPT_FAMILIES) or name in KEPT_NAMES):
            continue
        words = rest.split()
        if not words:
            continue
        try:
            value = float(words[0])
        except ValueError:
            continue
        out[key] = value if math.isfinite(value) else words[0]
    return out


def _split_sample(line: str) -> tuple[str | None, str]:
    """("name{labels}", "value [timestamp]"), honouring quotes inside the label set."""
    brace = line.find("{")
    space = line.find(" ")
    if brace < 0 or (0 <= space < brace):
        return (line[:space], line[space + 1 :]) if space > 0 else (None, "")
    quoted = escaped = False
    for i in range(brace + 1, len(line)):
        c = line[i]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == "}" and not quoted:
            return line[: i + 1], line[i + 1 :]
    return None, ""


def build_version(metrics: dict[str, float | str] | None) -> str | None:
    """gitVersion from the kubernetes_build_info sample."""
    for key in metrics or {}:
        if key.startswith("kubernetes_build_info"):
            match = _GIT_VERSION.search(key)
            if match:
                return match.group(1)
    return None
