"""The functional kernel-feature probe: for real as root, and with a stand-in nft."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from auditor.collect.probe import FEATURES, probe_features
from tests.helpers import require_kernel


def test_real_probe_passes_on_this_kernel() -> None:
    require_kernel("nft", "unshare")
    result = probe_features()
    assert result.ran and result.reason is None
    assert [f.name for f in result.features] == [f.name for f in FEATURES]
    assert result.missing == (), [(f.name, f.error) for f in result.missing]


def _stand_in(tmp_path: Path, body: str) -> str:
    script = tmp_path / "nft"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_stand_in_nft_without_numgen_names_the_feature(tmp_path: Path) -> None:
    nft = _stand_in(
        tmp_path,
        'batch=$(cat)\ncase "$batch" in *numgen*) echo "Error: Could not process rule: No such file or directory" >&2; exit 1;; esac\nexit 0\n',
    )
    result = probe_features(nft, isolate=os.geteuid() == 0)
    assert result.ran
    assert [f.name for f in result.missing] == ["numgen"]
    assert "No such file or directory" in (result.missing[0].error or "")


def test_nothing_works_is_said_once(tmp_path: Path) -> None:
    nft = _stand_in(tmp_path, 'cat >/dev/null\necho "Error: Protocol not supported" >&2\nexit 1\n')
    result = probe_features(nft, isolate=False)
    assert result.reason is not None and "unusable" in result.reason


def test_no_nft_binary() -> None:
    result = probe_features("/nonexistent/nft", isolate=False)
    assert not result.ran and "could not run" in (result.reason or "")


def test_round_trips_through_json(tmp_path: Path) -> None:
    from auditor.collect.probe import ProbeResult

    nft = _stand_in(tmp_path, "cat >/dev/null\nexit 0\n")
    result = probe_features(nft, isolate=False)
    again = ProbeResult.from_json(result.to_json())
    assert again.features == result.features and again.ran


@pytest.mark.parametrize("feature", FEATURES, ids=[f.name for f in FEATURES])
def test_each_feature_batch_is_valid_nft(feature) -> None:
    """Each batch alone passes the real nft (so a failure means the kernel, not a typo)."""
    require_kernel("nft", "unshare")
    import subprocess

    proc = subprocess.run(["unshare", "-n", "nft", "--check", "-f", "-"], input=feature.batch.encode(), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
