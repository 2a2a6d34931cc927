"""The snapshot contract: write/read round trips (directory and .tar.gz), and bad snapshots as one InputError."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from auditor.collect.facts import Address, HostFacts, KubeProxyFacts, Modules
from auditor.collect.snapshot import SCHEMA, SnapshotMeta, read_snapshot, write_snapshot
from auditor.collect.sources import NFTABLES, Required, SourceRecord
from auditor.errors import InputError

V4 = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\nCOMMIT\n"
NFT = b'{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}}]}'


def sample() -> tuple[SnapshotMeta, HostFacts, dict[str, bytes]]:
    sources = {
        "iptables-legacy-save": SourceRecord(
            "iptables-legacy-save",
            ("iptables-legacy-save",),
            True,
            None,
            0.25,
            file="iptables-legacy-save.txt",
            required=Required.IPTABLES,
        ),
        "iptables-nft-save": SourceRecord(
            "iptables-nft-save",
            ("iptables-nft-save",),
            False,
            "`iptables-nft-save` not found on PATH",
            0.0,
            absent=True,
            required=Required.IPTABLES,
        ),
        NFTABLES: SourceRecord(
            NFTABLES,
            ("nft", "-j", "list", "ruleset"),
            True,
            None,
            0.5,
            file="nft-ruleset.json",
            required=Required.NFTABLES,
        ),
        "kube-proxy-metrics": SourceRecord(
            "kube-proxy-metrics", ("http-get", "http://127.0.0.1:10249/proxyMode"), False, "no answer within 1 s", 1.0
        ),
    }
    meta = SnapshotMeta(SCHEMA, "0.1.0", "2026-11-26T18:00:00Z", "node-a", sources)
    host = HostFacts(
        kernel_release="6.1.0",
        os_release={"ID": "debian", "VERSION_ID": "12"},
        nft_version="1.0.6",
        iptables_version="1.8.9",
        iptables_backend="legacy",
        sysctls={"net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": None, "x.y": "4096 87380"},
        modules=Modules(loaded=("nf_tables",), builtin=None),
        addresses=(Address("eth0", "192.168.0.2", 24, "inet", "global"),),
        kube_proxy=KubeProxyFacts(
            running=True,
            pid=42,
            command=("/usr/local/bin/kube-proxy",),
            mode="iptables",
            mode_source="config",
            mode_setting="iptables",
            version="v1.31.2",
            flags=("--config=/var/lib/kube-proxy/config.conf",),
            config={"kind": "KubeProxyConfiguration", "mode": "iptables", "conntrack": {"maxPerCore": 0}},
            config_source="file:/var/lib/kube-proxy/config.conf",
            environment={"KUBE_PROXY_NFTABLES_SKIP_KERNEL_VERSION_CHECK": "1"},
            metrics={
                "kubeproxy_sync_proxy_rules_last_timestamp_seconds": 1.7e9,
                'kubernetes_build_info{git_version="v1.31.2"}': 1.0,
            },
            metrics_address="127.0.0.1:10249",
        ),
    )
    files = {"iptables-legacy-save.txt": V4.encode(), "nft-ruleset.json": NFT}
    return meta, host, files


@pytest.mark.parametrize("name", ["snap", "snap.tar.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    meta, host, files = sample()
    written = write_snapshot(tmp_path / name, meta, host, files)
    back = read_snapshot(tmp_path / name)
    assert back.meta == meta == written.meta
    assert back.host == host
    assert back.iptables_save("iptables-legacy-save") == V4
    assert back.iptables_save("iptables-nft-save") is None  # absent backend: no file
    assert back.iptables_saves() == {"iptables-legacy-save": V4}
    assert back.nft_ruleset() == NFT
    assert back.complete and back.incomplete_reasons() == []
    assert [r.name for r in back.failed_sources()] == ["kube-proxy-metrics"]


def test_directory_layout_and_tarball_members(tmp_path: Path) -> None:
    meta, host, files = sample()
    write_snapshot(tmp_path / "d", meta, host, files)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "host.json",
        "iptables-legacy-save.txt",
        "meta.json",
        "nft-ruleset.json",
    ]
    doc = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert set(doc) >= {"schema", "tool_version", "created", "hostname", "sources"}
    assert set(doc["sources"]["nftables"]) >= {"command", "ok", "error", "seconds"}
    host_doc = json.loads((tmp_path / "d" / "host.json").read_text())
    assert set(host_doc) >= {
        "kernel_release",
        "os_release",
        "nft_version",
        "iptables_version",
        "sysctls",
        "modules",
        "addresses",
        "kube_proxy",
    }
    assert set(host_doc["kube_proxy"]) >= {
        "running",
        "mode",
        "version",
        "flags",
        "config",
        "config_source",
        "environment",
        "metrics",
        "metrics_address",
    }
    write_snapshot(tmp_path / "node-a.tar.gz", meta, host, files)
    with tarfile.open(tmp_path / "node-a.tar.gz") as tar:
        assert sorted(tar.getnames()) == [
            "node-a/host.json",
            "node-a/iptables-legacy-save.txt",
            "node-a/meta.json",
            "node-a/nft-ruleset.json",
        ]


def test_incomplete_reasons_come_back_from_meta(tmp_path: Path) -> None:
    meta, host, files = sample()
    sources = dict(meta.sources)
    sources[NFTABLES] = SourceRecord(
        NFTABLES,
        ("nft",),
        False,
        "`nft` not found on PATH; install the nftables package or pass --nft PATH",
        0.0,
        required=Required.NFTABLES,
    )
    broken = SnapshotMeta(meta.schema, meta.tool_version, meta.created, meta.hostname, sources)
    del files["nft-ruleset.json"]
    write_snapshot(tmp_path / "s", broken, host, files)
    back = read_snapshot(tmp_path / "s")
    assert not back.complete
    assert back.incomplete_reasons() == [
        "nftables: `nft` not found on PATH; install the nftables package or pass --nft PATH"
    ]


def test_never_overwrites(tmp_path: Path) -> None:
    meta, host, files = sample()
    write_snapshot(tmp_path / "s", meta, host, files)
    with pytest.raises(InputError, match=r"s: already exists and is not empty"):
        write_snapshot(tmp_path / "s", meta, host, files)
    (tmp_path / "empty").mkdir()
    write_snapshot(tmp_path / "empty", meta, host, files)  # an empty directory is fine
    assert (tmp_path / "empty" / "meta.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


# --- bad snapshots ------------------------------------------------------------------------------


def good_dir(tmp_path: Path) -> Path:
    meta, host, files = sample()
    write_snapshot(tmp_path / "snap", meta, host, files)
    return tmp_path / "snap"


def edit_json(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope: no such snapshot"):
        read_snapshot(tmp_path / "nope")


def test_not_a_snapshot_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(InputError) as info:
        read_snapshot(tmp_path / "d")
    assert str(info.value) == f"{tmp_path}/d/meta.json: missing: not a kp-audit snapshot"


def test_garbled_meta(tmp_path: Path) -> None:
    snap = good_dir(tmp_path)
    (snap / "meta.json").write_text('{"schema": "kp-audit.snapshot/v1",\n  "sources": {,}}')
    with pytest.raises(InputError) as info:
        read_snapshot(snap)
    assert str(info.value).startswith(f"{snap}/meta.json:2: not JSON")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            "kp-audit.services/v1",
            "not a kp-audit snapshot (schema 'kp-audit.services/v1', expected 'kp-audit.snapshot/v1')",
        ),
        (None, "not a kp-audit snapshot (schema None, expected 'kp-audit.snapshot/v1')"),
        ("kp-audit.snapshot/v2", "snapshot schema 'kp-audit.snapshot/v2' is not supported"),
    ],
)
def test_wrong_schema(tmp_path: Path, schema: str | None, message: str) -> None:
    snap = good_dir(tmp_path)
    edit_json(snap / "meta.json", lambda d: d.update(schema=schema))
    with pytest.raises(
        InputError, match=r"^" + str(snap) + "/meta.json: " + message.replace("(", r"\(").replace(")", r"\)")
    ):
        read_snapshot(snap)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "meta.json",
            lambda d: d["sources"]["nftables"].update(ok="yes"),
            "field 'sources.nftables.ok': expected boolean, got string",
        ),
        ("meta.json", lambda d: d.pop("hostname"), "missing field 'hostname'"),
        ("meta.json", lambda d: d["sources"]["nftables"].update(file="../../etc/passwd"), "not a plain file name"),
        ("host.json", lambda d: d.update(sysctls=[]), "field 'sysctls': expected object, got array"),
        (
            "host.json",
            lambda d: d["kube_proxy"].update(running=None),
            "field 'kube_proxy.running': expected boolean, got null",
        ),
        ("host.json", lambda d: d["addresses"][0].update(prefix="24"), "field 'addresses[0].prefix': expected integer"),
    ],
)
def test_bad_fields(tmp_path: Path, file: str, change, message: str) -> None:  # type: ignore[no-untyped-def]
    snap = good_dir(tmp_path)
    edit_json(snap / file, change)
    with pytest.raises(InputError) as info:
        read_snapshot(snap)
    assert str(info.value).startswith(f"{snap}/{file}: ") and message in str(info.value)


def test_missing_dump_file(tmp_path: Path) -> None:
    snap = good_dir(tmp_path)
    (snap / "nft-ruleset.json").unlink()
    with pytest.raises(InputError) as info:
        read_snapshot(snap)
    assert str(info.value) == f"{snap}/nft-ruleset.json: missing (meta.json lists it for source nftables)"


def make_tar(path: Path, members: list[tarfile.TarInfo], data: bytes = b"{}") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        ("../evil.json", "path traversal"),
        ("snap/../../evil.json", "path traversal"),
        ("/etc/evil.json", "path traversal"),
    ],
)
def test_tarball_path_traversal_is_refused(tmp_path: Path, member: str, problem: str) -> None:
    path = make_tar(tmp_path / "bad.tar.gz", [tarfile.TarInfo("snap/meta.json"), tarfile.TarInfo(member)])
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert str(info.value) == f"{path}: refusing member {member!r}: {problem}"


def test_tarball_links_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("snap/meta.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    path = make_tar(tmp_path / "bad.tar.gz", [link])
    with pytest.raises(InputError, match=r"refusing member 'snap/meta.json': not a regular file"):
        read_snapshot(path)


def test_not_a_tarball(tmp_path: Path) -> None:
    path = tmp_path / "x.tar.gz"
    path.write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(InputError, match=r"x.tar.gz: not a snapshot directory or .tar.gz"):
        read_snapshot(path)


def test_tarball_without_meta(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "t.tar.gz", [tarfile.TarInfo("t/host.json")])
    with pytest.raises(InputError) as info:
        read_snapshot(path)
    assert str(info.value) == f"{path}/meta.json: missing: not a kp-audit snapshot"
