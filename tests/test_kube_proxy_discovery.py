"""Finding kube-proxy: a fake /proc tree, config files, and fake metrics servers on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from auditor.collect.kube_proxy import discover, identify, parse_flags, redact_flags
from auditor.collect.metrics import build_version, connect_address, parse_metrics
from tests.fake_runner import add_process, make_node

METRICS = """\
# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy rules were successfully synced
# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7329e+09
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="0.001"} 0
kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"} 12
kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 65
kubeproxy_iptables_ct_state_invalid_dropped_packets_total 3
kubeproxy_weird{path="a b}c",x="q\\"uote"} NaN
kubernetes_build_info{build_date="2024-10-22T20:28:14Z",compiler="gc",git_commit="5864a46",git_tree_state="clean",git_version="v1.31.2",go_version="go1.22.8",major="1",minor="31",platform="linux/amd64"} 1
process_cpu_seconds_total 12.5
rest_client_requests_total{code="200",host="10.0.0.1:6443",method="GET"} 42
"""
CONFIGZ = {"kubeproxy.config.k8s.io": {"Mode": "nftables", "MetricsBindAddress": "127.0.0.1:10249"}}
CONFIG = """\
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
metricsBindAddress: {bind}
iptables:
  masqueradeAll: true
conntrack:
  maxPerCore: 0
"""


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def do_GET(self) -> None:
        status, body = self.routes.get(self.path, (404, b"404 page not found\n"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(routes: dict[str, tuple[int, bytes]]) -> Iterator[int]:
    handler = type("Handler", (_Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def metrics_server() -> Iterator[int]:
    yield from serve(
        {
            "/proxyMode": (200, b"nftables"),
            "/configz": (200, json.dumps(CONFIGZ).encode()),
            "/metrics": (200, METRICS.encode()),
        }
    )


@pytest.fixture
def silent_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield int(s.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_proc(tmp_path: Path) -> Path:
    root = make_node(tmp_path / "node")
    add_process(root, 1, ["/sbin/init"])
    add_process(root, 77, ["/bin/bash", "-c", "kube-proxy is mentioned but not run"])
    return root


def test_identify() -> None:
    assert identify(["/usr/local/bin/kube-proxy", "--v=2"]) == (("/usr/local/bin/kube-proxy",), ["--v=2"])
    assert identify(["/hyperkube", "kube-proxy", "--config=/c"]) == (("/hyperkube", "kube-proxy"), ["--config=/c"])
    assert identify(["hyperkube", "proxy"]) == (("hyperkube", "proxy"), [])
    assert identify(["/bin/bash", "kube-proxy"]) is None
    assert identify(["kube-proxy-helper"]) is None
    assert identify([]) is None


def test_flags() -> None:
    flags = ["--config=/var/lib/kube-proxy/config.conf", "--proxy-mode", "nftables", "--masquerade-all", "--v=4"]
    assert parse_flags(flags) == {
        "config": "/var/lib/kube-proxy/config.conf",
        "proxy-mode": "nftables",
        "masquerade-all": "true",
        "v": "4",
    }
    assert redact_flags(["--master=https://admin:hunter2@10.0.0.1:6443", "--token", "abc", "--token-file=/t"]) == [
        "--master=https://<redacted>@10.0.0.1:6443",
        "--token",
        "<redacted>",
        "--token-file=/t",
    ]


def test_process_with_config_file_and_live_metrics(tmp_path: Path, metrics_server: int) -> None:
    root = fake_proc(tmp_path)
    proc = add_process(
        root,
        4321,
        ["/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=node-a"],
        {
            "KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK": "1",
            "KUBE_API_TOKEN": "s3cret",
            "NODE_NAME": "node-a",
            "AWS_SECRET_ACCESS_KEY": "nope",
            "HOME": "/root",
        },
    )
    config = proc / "root" / "var/lib/kube-proxy/config.conf"  # seen through /proc/PID/root
    config.parent.mkdir(parents=True)
    config.write_text(CONFIG.format(bind=f"0.0.0.0:{metrics_server}"))
    facts, records = discover(root)
    assert facts.running and facts.pid == 4321 and facts.command == ("/usr/local/bin/kube-proxy",)
    assert facts.config is not None and facts.config["iptables"] == {"masqueradeAll": True}
    assert facts.config_source == "file:/var/lib/kube-proxy/config.conf" and facts.config_error is None
    assert facts.metrics_address == f"127.0.0.1:{metrics_server}"  # 0.0.0.0 is asked on loopback
    # /proxyMode is what kube-proxy actually runs, whatever the file says
    assert (facts.mode, facts.mode_source, facts.mode_setting) == ("nftables", "/proxyMode", "iptables")
    assert facts.configz == CONFIGZ
    assert facts.version == "v1.31.2" and facts.version_source == "kubernetes_build_info"
    assert facts.environment == {
        "KUBE_API_TOKEN": "<redacted>",
        "KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK": "1",
        "NODE_NAME": "node-a",
    }
    assert facts.metrics is not None
    assert facts.metrics['kubeproxy_sync_proxy_rules_iptables_total{table="nat"}'] == 65
    assert facts.metrics['kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="+Inf"}'] == 12
    assert facts.metrics['kubeproxy_weird{path="a b}c",x="q\\"uote"}'] == "NaN"
    assert not any(k.startswith(("process_", "rest_client")) for k in facts.metrics)
    assert {r.name: r.ok for r in records} == {
        "kube-proxy": True,
        "kube-proxy-environment": True,
        "kube-proxy-config": True,
        "kube-proxy-metrics": True,
    }


def test_bad_config_file_is_recorded_not_fatal(tmp_path: Path) -> None:
    root = fake_proc(tmp_path)
    add_process(
        root, 500, ["kube-proxy", "--config", "/etc/kp.yaml", f"--metrics-bind-address=127.0.0.1:{closed_port()}"]
    )
    (root / "etc/kp.yaml").write_text("mode: iptables\nconntrack: [unclosed\n")
    facts, records = discover(root)
    assert facts.config is None and facts.config_source == "file:/etc/kp.yaml"
    assert facts.config_error is not None and facts.config_error.startswith("/etc/kp.yaml:")
    assert "not valid YAML" in facts.config_error
    rec = {r.name: r for r in records}["kube-proxy-config"]
    assert not rec.ok and rec.error == facts.config_error
    # no config, no /proxyMode: the mode falls back to the flags (none: unset means iptables)
    assert (facts.mode, facts.mode_source, facts.mode_setting) == ("iptables", "default", "")
    metrics = {r.name: r for r in records}["kube-proxy-metrics"]
    assert not metrics.ok and not metrics.absent and "connection refused" in (metrics.error or "")


def test_missing_config_and_proxy_mode_flag(tmp_path: Path) -> None:
    root = fake_proc(tmp_path)
    add_process(
        root,
        600,
        ["/hyperkube", "kube-proxy", "--config=/nope.yaml", "--proxy-mode=nftables", f"--metrics-port={closed_port()}"],
    )
    facts, _ = discover(root)
    assert facts.command == ("/hyperkube", "kube-proxy")
    assert facts.config_error == "/nope.yaml: No such file or directory"
    assert (facts.mode, facts.mode_source, facts.mode_setting) == ("nftables", "--proxy-mode", "nftables")
    assert facts.metrics_address is not None and facts.metrics_address.startswith("127.0.0.1:")


def test_kube_proxy_config_option_when_kube_proxy_runs_elsewhere(tmp_path: Path) -> None:
    root = fake_proc(tmp_path)
    config = tmp_path / "kp.yaml"
    config.write_text(CONFIG.replace("mode: iptables", 'mode: ""').format(bind=f"127.0.0.1:{closed_port()}"))
    facts, records = discover(root, kube_proxy_config=config)
    assert not facts.running and facts.pid is None
    assert facts.config_source == f"--kube-proxy-config {config}" and facts.config is not None
    assert (facts.mode, facts.mode_source, facts.mode_setting) == ("iptables", "default", "")
    metrics = {r.name: r for r in records}["kube-proxy-metrics"]
    assert metrics.absent and not metrics.ok  # nothing running here: absent, not failed


def test_wrong_kind_is_recorded(tmp_path: Path) -> None:
    config = tmp_path / "kp.yaml"
    config.write_text("kind: KubeletConfiguration\n")
    facts, _ = discover(fake_proc(tmp_path), kube_proxy_config=config, metrics_address=f"127.0.0.1:{closed_port()}")
    assert (
        facts.config is None
        and facts.config_error == f"{config}: kind 'KubeletConfiguration', expected KubeProxyConfiguration"
    )


def test_no_kube_proxy(tmp_path: Path) -> None:
    facts, records = discover(fake_proc(tmp_path), metrics_address=f"127.0.0.1:{closed_port()}")
    assert not facts.running and facts.mode is None and facts.mode_setting is None and facts.flags == ()
    assert [r.name for r in records] == ["kube-proxy", "kube-proxy-metrics"]
    assert records[0].ok and records[0].note == "no kube-proxy process in /proc"


def test_embedded_kube_proxy_found_by_its_metrics_server(tmp_path: Path, metrics_server: int) -> None:
    facts, _ = discover(fake_proc(tmp_path), metrics_address=f"127.0.0.1:{metrics_server}")
    assert facts.running and facts.pid is None and facts.mode == "nftables" and facts.version == "v1.31.2"


def test_silent_metrics_port_gives_up_within_a_second(tmp_path: Path, silent_port: int) -> None:
    root = fake_proc(tmp_path)
    add_process(root, 900, ["kube-proxy", f"--metrics-bind-address=127.0.0.1:{silent_port}"])
    start = time.monotonic()
    facts, records = discover(root)
    elapsed = time.monotonic() - start
    assert 0.9 < elapsed < 1.8  # one request timed out; the other two were not tried
    assert facts.running and facts.metrics is None
    assert facts.metrics_error == f"http://127.0.0.1:{silent_port}/proxyMode: no answer within 1 s"
    rec = {r.name: r for r in records}["kube-proxy-metrics"]
    assert rec.error == f"{facts.metrics_error}; check metricsBindAddress / --metrics-bind-address"


def test_partial_answers(tmp_path: Path) -> None:
    for port in serve({"/proxyMode": (200, b"iptables\n"), "/metrics": (500, b"oops")}):
        facts, _ = discover(fake_proc(tmp_path), metrics_address=f"127.0.0.1:{port}")
        assert facts.running and facts.mode == "iptables" and facts.configz is None and facts.metrics is None
        assert facts.metrics_error == (
            f"http://127.0.0.1:{port}/configz: HTTP 404; http://127.0.0.1:{port}/metrics: HTTP 500"
        )


def test_connect_address() -> None:
    assert connect_address(None) == "127.0.0.1:10249"
    assert connect_address("") == "127.0.0.1:10249"
    assert connect_address("0.0.0.0:10249") == "127.0.0.1:10249"
    assert connect_address("192.168.0.2:9999") == "192.168.0.2:9999"
    assert connect_address("[::]:10249") == "[::1]:10249"
    assert connect_address("0.0.0.0", "10250") == "127.0.0.1:10250"
    assert connect_address("0.0.0.0/0:10249") == "127.0.0.1:10249"


def test_parse_metrics_and_version() -> None:
    metrics = parse_metrics(METRICS)
    assert build_version(metrics) == "v1.31.2"
    assert build_version({'kubernetes_build_info{gitVersion="v1.29.0"}': 1.0}) == "v1.29.0"
    assert build_version({}) is None
    assert metrics["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] == 1.7329e9
