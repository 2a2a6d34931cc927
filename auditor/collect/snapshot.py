"""The snapshot contract: what `kp-audit collect` writes and every later command reads.

A snapshot is a directory, or a `.tar.gz` of one when the path ends so::

    meta.json    {"schema": "kp-audit.snapshot/v1", "tool_version", "created", "hostname",
                  "sources": {NAME: {"command", "ok", "error", "seconds", ...}}}
    host.json    kernel, versions, sysctls, modules, addresses, kube_proxy (auditor.collect.facts)
    iptables-legacy-save.txt  iptables-nft-save.txt  ip6tables-legacy-save.txt  ip6tables-nft-save.txt
    nft-ruleset.json          (`nft -j list ruleset`)

Fields and files may be added, never renamed. Reading validates the envelope and every
field, and a tarball may hold only plain files with plain names: anything else is one
`InputError` naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from auditor.collect.facts import FieldReader, HostFacts, host_from_json, host_to_json
from auditor.collect.sources import IPTABLES_SAVES, NFT_RULESET_FILE, NFTABLES, Required, SourceRecord
from auditor.errors import InputError

SCHEMA = "kp-audit.snapshot/v1"
SCHEMA_PREFIX = "kp-audit.snapshot/"
META_FILE = "meta.json"
HOST_FILE = "host.json"
#: no member of a snapshot tarball may be larger than this (a guard against gzip bombs)
MAX_MEMBER_BYTES = 2 * 1024**3


class SnapshotFiles(Protocol):
    """Read access to the files of a snapshot, by name."""

    def read(self, name: str) -> bytes | None: ...

    def names(self) -> list[str]: ...


class _DirectoryFiles:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(str(self.path / name), exc.strerror or str(exc)) from exc

    def names(self) -> list[str]:
        return sorted(p.name for p in self.path.iterdir() if p.is_file())


class _MemoryFiles:
    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = dict(files)

    def read(self, name: str) -> bytes | None:
        return self.files.get(name)

    def names(self) -> list[str]:
        return sorted(self.files)


@dataclass(frozen=True)
class SnapshotMeta:
    """meta.json: who wrote the snapshot, when, on which host, and how each source went."""

    schema: str
    tool_version: str
    created: str
    hostname: str
    sources: Mapping[str, SourceRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "tool_version": self.tool_version,
            "created": self.created,
            "hostname": self.hostname,
            "sources": {name: record.to_json() for name, record in self.sources.items()},
        }


@dataclass(frozen=True)
class Snapshot:
    """A collected node: meta, host facts, and the raw rule dumps (read on demand)."""

    location: str
    meta: SnapshotMeta
    host: HostFacts
    files: SnapshotFiles = field(repr=False, compare=False)

    def source(self, name: str) -> SourceRecord | None:
        return self.meta.sources.get(name)

    def raw(self, name: str) -> bytes | None:
        """A snapshot file's bytes, or None when the snapshot has no such file."""
        return self.files.read(name)

    def iptables_save(self, name: str) -> str | None:
        """The text of one `*-save` dump ("iptables-nft-save" ...), or None when it was not collected."""
        record = self.source(name)
        if record is None or record.file is None:
            return None
        data = self._required_file(record)
        return data.decode("utf-8", "replace")

    def iptables_saves(self) -> dict[str, str]:
        """Every `*-save` dump the snapshot holds, by source name."""
        out = {}
        for save in IPTABLES_SAVES:
            text = self.iptables_save(save.name)
            if text is not None:
                out[save.name] = text
        return out

    def nft_ruleset(self) -> bytes | None:
        """`nft -j list ruleset` output, or None when it was not collected (or nf_tables is absent)."""
        record = self.source(NFTABLES)
        if record is None or record.file is None:
            return None
        return self._required_file(record)

    def _required_file(self, record: SourceRecord) -> bytes:
        assert record.file is not None
        data = self.files.read(record.file)
        if data is None:
            raise InputError(f"{self.location}/{record.file}", f"missing (meta.json lists it for source {record.name})")
        return data

    def failed_sources(self) -> list[SourceRecord]:
        """Sources that failed (absent binaries are not failures)."""
        return [r for r in self.meta.sources.values() if r.failed]

    def incomplete_reasons(self) -> list[str]:
        """One line per required source that failed: which, what happened, how to fix it."""
        reasons = []
        iptables = _iptables_reason(self.meta.sources)
        if iptables:
            reasons.append(iptables)
        nft = self.meta.sources.get(NFTABLES)
        if nft is None:
            reasons.append("nftables: not collected (no `nft -j list ruleset` in this snapshot)")
        elif not nft.ok:
            reasons.append(f"nftables: {nft.error or 'failed'}")
        return reasons

    @property
    def complete(self) -> bool:
        return not self.incomplete_reasons()


def _iptables_reason(sources: Mapping[str, SourceRecord]) -> str | None:
    """Why the iptables state is missing, or None when at least one backend was read.

    A backend (legacy, nft) counts as read when its binaries that exist all succeeded and
    at least one exists.
    """
    by_backend: dict[str, list[SourceRecord]] = {}
    for save in IPTABLES_SAVES:
        record = sources.get(save.name)
        if record is not None and not record.absent:
            by_backend.setdefault(save.backend, []).append(record)
    if any(records and all(r.ok for r in records) for records in by_backend.values()):
        return None
    if not by_backend:
        names = ", ".join(s.name for s in IPTABLES_SAVES)
        return f"iptables: no iptables-save binary found ({names}); install the iptables package"
    failures = "; ".join(
        f"{r.name}: {r.error or 'failed'}" for records in by_backend.values() for r in records if not r.ok
    )
    return f"iptables: no iptables backend could be read ({failures})"


# --- writing ----------------------------------------------------------------------------------


def is_tarball(path: str | Path) -> bool:
    return str(path).endswith(".tar.gz")


def write_snapshot(output: str | Path, meta: SnapshotMeta, host: HostFacts, files: Mapping[str, bytes]) -> Snapshot:
    """Write a snapshot (directory, or .tar.gz) atomically; refuses to overwrite an existing one.

    `files` are the dumps by file name (meta.json and host.json are written from `meta`/`host`).
    """
    path = Path(output)
    check_output(path)
    payload = dict(files)
    payload[META_FILE] = _json_bytes(meta.to_json())
    payload[HOST_FILE] = _json_bytes(host_to_json(host))
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if is_tarball(path):
            _write_tarball(path, payload)
        else:
            _write_directory(path, payload)
    except OSError as exc:
        raise InputError(str(path), f"cannot write snapshot: {exc.strerror or exc}") from exc
    store: SnapshotFiles = _MemoryFiles(payload) if is_tarball(path) else _DirectoryFiles(path)
    return Snapshot(str(path), meta, host, store)


def check_output(output: str | Path) -> None:
    """Refuse a path that holds something already (an empty directory is fine)."""
    path = Path(output)
    if path.is_dir():
        if any(path.iterdir()):
            raise InputError(
                str(path), "already exists and is not empty; give a new path (a snapshot is never overwritten)"
            )
    elif path.exists():
        raise InputError(str(path), "already exists; give a new path (a snapshot is never overwritten)")


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()


def _write_directory(path: Path, payload: Mapping[str, bytes]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent or "."))
    try:
        for name, data in payload.items():
            (staging / name).write_bytes(data)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it the usual mode
        if path.is_dir():
            path.rmdir()  # empty (checked): replaced by the staged snapshot
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_tarball(path: Path, payload: Mapping[str, bytes]) -> None:
    stem = path.name[: -len(".tar.gz")] or "snapshot"
    fd, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
            for name, data in payload.items():
                info = tarfile.TarInfo(f"{stem}/{name}")
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, _BytesReader(data))
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp makes it 0600; give it the usual mode
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class _BytesReader:
    """A minimal file object over bytes (tarfile only calls read)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else min(len(self._data), self._pos + size)
        chunk = bytes(self._data[self._pos : end])
        self._pos = end
        return chunk


# --- reading ----------------------------------------------------------------------------------


def read_snapshot(path: str | Path) -> Snapshot:
    """A snapshot directory or .tar.gz; raises `InputError` naming the file on anything wrong."""
    location = str(path)
    p = Path(path)
    if p.is_dir():
        files: SnapshotFiles = _DirectoryFiles(p)
    elif p.is_file():
        files = _MemoryFiles(_read_tarball(p))
    elif p.exists():
        raise InputError(location, "not a snapshot directory or .tar.gz")
    else:
        raise InputError(location, "no such snapshot (directory or .tar.gz)")
    meta = _read_meta(files, location)
    host = _read_host(files, location)
    snapshot = Snapshot(location, meta, host, files)
    present = set(files.names())
    for record in meta.sources.values():
        if record.file is not None and record.file not in present:
            raise InputError(f"{location}/{record.file}", f"missing (meta.json lists it for source {record.name})")
    return snapshot


def _read_tarball(path: Path) -> dict[str, bytes]:
    location = str(path)
    if not tarfile.is_tarfile(path):
        raise InputError(location, "not a snapshot directory or .tar.gz")
    try:
        with tarfile.open(path, mode="r:*") as tar:
            return _tar_members(location, tar)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(location, f"damaged archive ({exc})") from exc


def _tar_members(location: str, tar: tarfile.TarFile) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    members = tar.getmembers()
    prefix = _common_prefix(location, members)
    for member in members:
        if member.isdir():
            continue
        if not member.isfile():
            raise InputError(location, f"refusing member {member.name!r}: not a regular file (link or device)")
        name = member.name[len(prefix) :]
        if "/" in name:
            raise InputError(location, f"refusing member {member.name!r}: a snapshot holds no subdirectories")
        if member.size > MAX_MEMBER_BYTES:
            raise InputError(location, f"refusing member {member.name!r}: {member.size} bytes is too large")
        handle = tar.extractfile(member)
        if handle is None:
            raise InputError(location, f"cannot read member {member.name!r}")
        out[name] = handle.read()
    return out


def _common_prefix(location: str, members: list[tarfile.TarInfo]) -> str:
    """ "" (flat) or "top/" (one top directory); refuses absolute paths and `..`."""
    tops = set()
    for member in members:
        pure = PurePosixPath(member.name)
        if member.name.startswith("/") or ".." in pure.parts or "\\" in member.name:
            raise InputError(location, f"refusing member {member.name!r}: path traversal")
        if member.isdir():
            continue
        tops.add(pure.parts[0] if len(pure.parts) > 1 else "")
    if len(tops) == 1 and "" not in tops:
        return tops.pop() + "/"
    return ""


def _load_json(files: SnapshotFiles, location: str, name: str) -> Any:
    source = f"{location}/{name}"
    data = files.read(name)
    if data is None:
        raise InputError(source, "missing: not a kp-audit snapshot")
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not UTF-8 text (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InputError(source, f"not JSON ({exc.msg})", exc.lineno) from exc


def _read_meta(files: SnapshotFiles, location: str) -> SnapshotMeta:
    source = f"{location}/{META_FILE}"
    data = _load_json(files, location, META_FILE)
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise InputError(source, f"not a kp-audit snapshot (schema {schema!r}, expected {SCHEMA!r})")
    if schema != SCHEMA:
        raise InputError(source, f"snapshot schema {schema!r} is not supported by this kp-audit (it reads {SCHEMA!r})")
    r = FieldReader(source, data)
    sources_obj = r.get("sources", dict)
    sources = {name: _read_source(source, name, value) for name, value in sources_obj.items()}
    return SnapshotMeta(
        schema=schema,
        tool_version=r.get("tool_version", str),
        created=r.get("created", str),
        hostname=r.get("hostname", str),
        sources=sources,
    )


def _read_source(source: str, name: str, value: Any) -> SourceRecord:
    r = FieldReader(source, value, f"sources.{name}")
    command = r.str_list("command")
    required = r.get("required", (str, type(None)), required=False)
    if required is not None and required not in {g.value for g in Required}:
        raise InputError(source, f"field 'sources.{name}.required': unknown group {required!r}")
    file = r.get("file", (str, type(None)), required=False)
    if file is not None and (file in ("", ".", "..") or "/" in file or "\\" in file):
        raise InputError(source, f"field 'sources.{name}.file': not a plain file name: {file!r}")
    return SourceRecord(
        name=name,
        command=command or (),
        ok=r.get("ok", bool),
        error=r.get("error", (str, type(None))),
        seconds=float(r.get("seconds", (int, float))),
        absent=r.get("absent", bool, required=False, default=False),
        file=file,
        note=r.get("note", (str, type(None)), required=False),
        required=None if required is None else Required(required),
        method=r.get("method", (str, type(None)), required=False),
    )


def _read_host(files: SnapshotFiles, location: str) -> HostFacts:
    return host_from_json(_load_json(files, location, HOST_FILE), f"{location}/{HOST_FILE}")


__all__ = [
    "HOST_FILE",
    "META_FILE",
    "NFT_RULESET_FILE",
    "SCHEMA",
    "Snapshot",
    "SnapshotFiles",
    "SnapshotMeta",
    "check_output",
    "is_tarball",
    "read_snapshot",
    "write_snapshot",
]
