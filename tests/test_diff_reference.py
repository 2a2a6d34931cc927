"""The reference pairs (`overall`, `repeated-initial`): iptables mode and nftables mode of the
same Services differ only by the deliberate mode differences, each named here."""

from __future__ import annotations

import json

import pytest

from auditor.diff import Classification, DifferenceKind, compare
from auditor.diff.inputs import files_side, share_addresses
from auditor.report.diff_markdown import escape, render_diff_markdown
from tests.cli import run_cli
from tests.helpers import reference
from tests.test_trace_model import REFERENCE_ADDRESSES

EXPECTED = {
    "overall": {
        ("node-port-addresses", DifferenceKind.NODE_PORT_ADDRESSES),
        ("localhost-node-ports", DifferenceKind.LOCALHOST_NODE_PORTS),
        ("health-check-accept", DifferenceKind.HEALTH_CHECK_NODE_PORTS),
        ("kind-ambiguous-in-nftables", DifferenceKind.FRONTEND_KIND),  # svc2's load balancer 1.2.3.4
        ("cluster-ips-check", DifferenceKind.CLUSTER_IP_UNUSED_PORT),
        ("cluster-ips-check", DifferenceKind.UNALLOCATED_SERVICE_IP),
    },
    "repeated-initial": {
        ("node-port-addresses", DifferenceKind.NODE_PORT_ADDRESSES),
        ("localhost-node-ports", DifferenceKind.LOCALHOST_NODE_PORTS),
        ("cluster-ips-check", DifferenceKind.CLUSTER_IP_UNUSED_PORT),
        ("cluster-ips-check", DifferenceKind.UNALLOCATED_SERVICE_IP),
    },
}


def _sides(dataset: str, dump: str = "iptables-save.roundtrip-nft.txt"):  # type: ignore[no-untyped-def]
    left = files_side("iptables", str(reference(f"{dataset}.{dump}")), None, None, None)
    right = files_side("nftables", None, None, str(reference(f"{dataset}.nft.json")), None)
    return share_addresses(left, right, REFERENCE_ADDRESSES)


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
@pytest.mark.parametrize("dump", ["iptables-save.txt", "iptables-save.roundtrip-nft.txt"])
def test_reference_pair_differs_only_as_expected(dataset: str, dump: str) -> None:
    result = compare(*_sides(dataset, dump))
    assert result.unexpected == 0, [d.message for d in result.differences if not d.is_expected]
    assert {(d.expected, d.kind) for d in result.differences} == EXPECTED[dataset]
    for d in result.differences:
        assert d.classification is Classification.EXPECTED and d.reason and d.source
        if d.packet is not None:
            assert d.left_outcome and d.right_outcome


def test_overall_evidence_names_the_deciding_rules() -> None:
    result = compare(*_sides("overall"))
    by_kind = {d.kind: d for d in result.differences}
    health = by_kind[DifferenceKind.HEALTH_CHECK_NODE_PORTS]
    assert health.left_rule is not None and "health check node port" in health.left_rule.rule
    assert health.right_rule is not None and health.right_rule.rule == "policy accept"
    unused = by_kind[DifferenceKind.CLUSTER_IP_UNUSED_PORT]
    assert unused.right_rule is not None and unused.right_rule.chain == "cluster-ips-check"
    assert unused.packet is not None and unused.packet.dst == "172.30.0.41"
    nodeport = by_kind[DifferenceKind.NODE_PORT_ADDRESSES]
    assert nodeport.packet is not None and nodeport.packet.dst == "192.168.1.2"  # answers in iptables mode only
    assert nodeport.left_outcome == "drop" and nodeport.right_outcome == "accept (local)"  # svc2's 3001


def test_same_side_twice_is_clean() -> None:
    left, _ = _sides("overall")
    assert compare(left, left).differences == ()


@pytest.mark.parametrize("dataset", sorted(EXPECTED))
def test_cli_exit_0_and_json_schema(dataset: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys,
        "diff",
        "--left-iptables-save", str(reference(f"{dataset}.iptables-save.txt")),
        "--right-nft-json", str(reference(f"{dataset}.nft.json")),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "kp-audit.diff/v1"
    assert doc["left"]["mode"] == "iptables" and doc["right"]["mode"] == "nftables"
    assert doc["summary"] == {"expected": len(EXPECTED[dataset]), "unexpected": 0}


def test_cli_console_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    files = ("--left-iptables-save", str(reference("overall.iptables-save.txt")), "--right-nft-json", str(reference("overall.nft.json")))
    code, out, _ = run_cli(capsys, "diff", *files)
    assert code == 0 and "no unexpected difference" in out
    code, out, _ = run_cli(capsys, "diff", *files, "--format", "markdown")
    assert code == 0 and out.startswith("# kp-audit diff") and "## Expected differences (6)" in out


def test_markdown_escapes_node_text() -> None:
    assert escape("a|b *x* <script>") == "a\\|b \\*x\\* \\<script\\>"
    result = compare(*_sides("overall"))
    text = render_diff_markdown(result)
    assert "| kind |" in text and "<" not in text.split("## Unexpected", 1)[1].replace("\\<", "")


@pytest.mark.parametrize(
    "argv, problem",
    [
        (("diff",), "give snapshots"),
        (("diff", "--left-nft-json", "/nonexistent.json", "--right-nft-json", "/nonexistent.json"), "no such file"),
        (("diff", "/nonexistent-snapshot"), "no such snapshot"),
        (("diff", "a", "b", "c"), "at most two"),
        (("diff", "--predict", "/nonexistent-snapshot"), "no such snapshot"),
        (("trace", "--nft-json", "x", "--dst", "10.0.0.1"), "IP:PORT"),
    ],
)
def test_bad_input_exits_3(argv: tuple[str, ...], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 3 and problem in err


def test_bad_rule_file_exits_3(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run_cli(capsys, "diff", "--left-nft-json", str(bad), "--right-iptables-save", str(reference("overall.iptables-save.txt")))
    assert code == 3 and "invalid JSON" in err


def test_trace_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "trace", "--nft-json", str(reference("overall.nft.json")), "--dst", "172.30.0.44:80", "--format", "json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "kp-audit.trace/v1"
    assert doc["distribution"] == {"dnat 10.180.0.4:80": 0.5, "dnat 10.180.0.5:80": 0.5}
    assert all(b["deciding"]["chain"].startswith("endpoint-") for b in doc["branches"])


def test_trace_cli_console(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "trace", "--iptables-save", str(reference("overall.iptables-save.txt")), "--dst", "172.30.0.46:80"
    )
    assert code == 0 and "reject" in out and "has no endpoints" in out
