"""The running kube-proxy: its process, flags, config file, environment and metrics server.

Discovery reads /proc (under `root`): a process whose argv[0] is `kube-proxy`, or a
hyperkube-style binary run with the `kube-proxy`/`proxy` subcommand. The `--config` file is
read through /proc/PID/root, so a containerized kube-proxy's file is found on the host. A
config file that does not parse is recorded, not fatal. Then the metrics server is asked
(within `http_timeout` seconds) for /proxyMode, /configz and /metrics; a server that
answers also counts as a running kube-proxy (k3s-style binaries embed it).

Only KUBE_* variables and a short allow-list are kept from the environment, and values
whose names look secret are redacted.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from auditor.collect import metrics as metrics_mod
from auditor.collect.facts import KubeProxyFacts
from auditor.collect.host import node_path
from auditor.collect.sources import SourceRecord, Stopwatch, read_command

_SUBCOMMAND_HOSTS = ("hyperkube", "kubernetes", "k8s")
_SUBCOMMANDS = ("kube-proxy", "proxy")
ENV_ALLOWLIST = ("NODE_NAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "PATH")
_SECRET = re.compile(r"TOKEN|PASSW|SECRET|KEY|CRED|AUTH|CERT", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(://)[^/@\s]+@")
REDACTED = "<redacted>"


@dataclass(frozen=True)
class KubeProxyProcess:
    """A kube-proxy process: pid, how it was invoked, and its flags (redacted)."""

    pid: int
    command: tuple[str, ...]
    flags: tuple[str, ...]


def find_process(root: Path) -> KubeProxyProcess | None:
    """The kube-proxy process with the lowest pid, or None."""
    proc = node_path(root, "/proc")
    try:
        pids = sorted(int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    except OSError:
        return None
    for pid in pids:
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except OSError:
            continue
        argv = [a.decode("utf-8", "replace") for a in raw.split(b"\0")]
        while argv and argv[-1] == "":
            argv.pop()
        found = identify(argv)
        if found is not None:
            command, flags = found
            return KubeProxyProcess(pid, command, tuple(redact_flags(flags)))
    return None


def identify(argv: list[str]) -> tuple[tuple[str, ...], list[str]] | None:
    """(command, flags) when `argv` runs kube-proxy, else None."""
    if not argv:
        return None
    base = os.path.basename(argv[0])
    if base == "kube-proxy":
        return (argv[0],), argv[1:]
    if len(argv) > 1 and argv[1] in _SUBCOMMANDS and base in _SUBCOMMAND_HOSTS:
        return (argv[0], argv[1]), argv[2:]
    return None


def parse_flags(flags: tuple[str, ...] | list[str]) -> dict[str, str]:
    """{"config": "/x", "v": "2", "masquerade-all": "true"}: the last occurrence wins.

    kube-proxy takes no positional arguments, so `--name value` is read as a value unless
    the next word is itself a flag.
    """
    out: dict[str, str] = {}
    i = 0
    while i < len(flags):
        word = flags[i]
        i += 1
        if not word.startswith("-") or word in ("-", "--"):
            continue
        name = word.lstrip("-")
        if "=" in name:
            key, _, value = name.partition("=")
            out[key] = value
        elif i < len(flags) and not flags[i].startswith("-"):
            out[name] = flags[i]
            i += 1
        else:
            out[name] = "true"
    return out


def redact_flags(flags: list[str]) -> list[str]:
    """Flags with secret-looking values and URL credentials replaced."""
    out: list[str] = []
    hide_next = False
    for word in flags:
        if hide_next and not word.startswith("-"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        if word.startswith("-"):
            name, eq, _ = word.lstrip("-").partition("=")
            if _SECRET.search(name) and not name.endswith(("file", "path", "dir")):
                if eq:
                    word = word.split("=", 1)[0] + "=" + REDACTED
                else:
                    hide_next = True
        out.append(_URL_USERINFO.sub(r"\1" + REDACTED + "@", word))
    return out


def read_environment(root: Path, pid: int) -> tuple[dict[str, str], str | None]:
    """KUBE_* and allow-listed variables of `pid` (secrets redacted), and an error if unreadable."""
    try:
        raw = node_path(root, f"/proc/{pid}/environ").read_bytes()
    except OSError as exc:
        return {}, f"/proc/{pid}/environ: {exc.strerror or exc}"
    env: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, eq, value = item.decode("utf-8", "replace").partition("=")
        if not eq or not (name.startswith("KUBE_") or name in ENV_ALLOWLIST):
            continue
        env[name] = REDACTED if _SECRET.search(name) else value
    return dict(sorted(env.items())), None


def load_config(path: Path, label: str) -> tuple[dict[str, Any] | None, str | None]:
    """A KubeProxyConfiguration YAML file: (config, None) or (None, one-line error naming `label`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return None, f"{label}: {reason}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{label}:{mark.line + 1}" if mark is not None else label
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return None, f"{where}: not valid YAML ({problem})"
    if not isinstance(data, dict):
        return None, f"{label}: not a KubeProxyConfiguration (expected a mapping, got {type(data).__name__})"
    kind = data.get("kind")
    if kind is not None and kind != "KubeProxyConfiguration":
        return None, f"{label}: kind {kind!r}, expected KubeProxyConfiguration"
    return data, None


def _process_config(root: Path, process: KubeProxyProcess, path: str) -> tuple[Path, str]:
    """The config file as the process sees it (via /proc/PID/root), else the same path on the host."""
    inside = node_path(root, f"/proc/{process.pid}/root") / path.lstrip("/")
    try:
        if inside.exists():
            return inside, path
    except OSError:  # /proc/PID/root of another user's process needs root
        pass
    return node_path(root, path), path


def config_value(config: dict[str, Any] | None, key: str) -> Any:
    """A top-level field, matched case-insensitively (/configz serves Go field names: "Mode")."""
    if not config:
        return None
    if key in config:
        return config[key]
    lowered = key.lower()
    for name, value in config.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def configz_body(configz: dict[str, Any] | None) -> dict[str, Any] | None:
    """The configuration inside a /configz answer ({"kubeproxy.config.k8s.io": {...}})."""
    if not configz:
        return None
    inner = configz.get("kubeproxy.config.k8s.io")
    return inner if isinstance(inner, dict) else configz


def discover(
    root: Path,
    *,
    kube_proxy_config: Path | None = None,
    metrics_address: str | None = None,
    http_timeout: float = 1.0,
) -> tuple[KubeProxyFacts, list[SourceRecord]]:
    """Everything about kube-proxy, and the records of the sources read.

    `kube_proxy_config` (the user's --kube-proxy-config) wins over the process's --config.
    `metrics_address` overrides the address from config and flags.
    """
    watch = Stopwatch()
    process = find_process(root)
    note = None if process else "no kube-proxy process in /proc"
    records = [SourceRecord("kube-proxy", read_command("/proc/*/cmdline"), True, None, watch.seconds, note=note)]
    flags = parse_flags(process.flags) if process else {}

    env: dict[str, str] = {}
    if process is not None:
        watch = Stopwatch()
        env, env_error = read_environment(root, process.pid)
        records.append(
            SourceRecord(
                "kube-proxy-environment",
                read_command(f"/proc/{process.pid}/environ"),
                env_error is None,
                env_error,
                watch.seconds,
            )
        )

    config, config_source, config_error, record = _config(root, process, flags, kube_proxy_config)
    if record is not None:
        records.append(record)

    bind = config_value(config, "metricsBindAddress") or flags.get("metrics-bind-address")
    address = metrics_address or metrics_mod.connect_address(bind, flags.get("metrics-port"))
    result = metrics_mod.probe(address, http_timeout)
    records.append(_probe_record(result, process is not None))

    configz = result.configz
    mode, mode_source, mode_setting = _mode(result, configz_body(configz), config, flags, process is not None)
    version = metrics_mod.build_version(result.metrics)
    facts = KubeProxyFacts(
        running=process is not None or result.answered,
        pid=process.pid if process else None,
        command=process.command if process else (),
        mode=mode,
        mode_source=mode_source,
        mode_setting=mode_setting,
        version=version,
        version_source="kubernetes_build_info" if version else None,
        flags=process.flags if process else (),
        config=config,
        config_source=config_source,
        config_error=config_error,
        configz=configz,
        environment=env,
        metrics=result.metrics,
        metrics_address=address,
        metrics_error=result.error,
    )
    return facts, records


def _config(
    root: Path, process: KubeProxyProcess | None, flags: dict[str, str], override: Path | None
) -> tuple[dict[str, Any] | None, str | None, str | None, SourceRecord | None]:
    """(config, config_source, config_error, record) from --kube-proxy-config or the process's --config."""
    watch = Stopwatch()
    if override is not None:
        config, error = load_config(override, str(override))
        record = SourceRecord("kube-proxy-config", read_command(str(override)), error is None, error, watch.seconds)
        return config, f"--kube-proxy-config {override}", error, record
    path = flags.get("config")
    if process is None or not path:
        return None, None, None, None
    file, label = _process_config(root, process, path)
    config, error = load_config(file, label)
    record = SourceRecord("kube-proxy-config", read_command(label), error is None, error, watch.seconds)
    return config, f"file:{label}", error, record


def _probe_record(result: metrics_mod.Probe, process_found: bool) -> SourceRecord:
    command = ("http-get", f"http://{result.address}/proxyMode", "/configz", "/metrics")
    if result.answered:
        return SourceRecord("kube-proxy-metrics", command, result.error is None, result.error, result.seconds)
    if not process_found:
        note = f"no kube-proxy metrics server at {result.address}"
        return SourceRecord("kube-proxy-metrics", command, False, result.error, result.seconds, absent=True, note=note)
    error = f"{result.error}; check metricsBindAddress / --metrics-bind-address"
    return SourceRecord("kube-proxy-metrics", command, False, error, result.seconds)


def _mode(
    result: metrics_mod.Probe,
    configz: dict[str, Any] | None,
    config: dict[str, Any] | None,
    flags: dict[str, str],
    process_found: bool,
) -> tuple[str | None, str | None, str | None]:
    """(mode in effect, where it came from, the configured value) - an unset mode means iptables."""
    setting: str | None = None
    if config is not None:
        value = config_value(config, "mode")
        setting = value if isinstance(value, str) else ""
    elif "proxy-mode" in flags:
        setting = flags["proxy-mode"]
    elif process_found:
        setting = ""
    if result.proxy_mode:
        return result.proxy_mode, "/proxyMode", setting
    live = config_value(configz, "mode")
    if isinstance(live, str):
        return (live or "iptables"), "/configz", setting
    if config is not None:
        return (setting or "iptables"), ("config" if setting else "default"), setting
    if "proxy-mode" in flags:
        return (flags["proxy-mode"] or "iptables"), "--proxy-mode", setting
    if setting == "":
        return "iptables", "default", setting
    return None, None, setting
