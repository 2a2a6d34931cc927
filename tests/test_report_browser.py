"""The demo HTML report in a real browser: headless Chromium from Debian's packages opens it from
a file:// URL inside a network namespace that has only loopback, with Selenium driving it.

Asserts the verdict banner, the findings, the services table and its search filter, that every
request the page made was for the file itself (CDP Network events), and that the page logged
no error (a Content-Security-Policy violation would). Saves reports/screenshot.png.
Installs chromium and chromium-driver with apt-get when missing (as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, namespace, require_kernel

pytestmark = pytest.mark.kernel

SESSION = Path(__file__).resolve().parent / "browser_session.py"
SCREENSHOT = REPO / "reports" / "screenshot.png"
PACKAGES = ("chromium", "chromium-driver")


def _ensure_chromium() -> None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.geteuid() != 0:
        pytest.skip("chromium and chromium-driver are not installed, and installing them needs root (apt-get install -y chromium chromium-driver)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.fail("apt-get installed chromium and chromium-driver, but they are not on PATH")


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("selenium", reason="selenium is a test extra: pip install -e '.[test]'")
    require_kernel()
    _ensure_chromium()
    work = tmp_path_factory.mktemp("browser")
    report_dir = work / "reports"
    code = subprocess.run(
        [sys.executable, "-m", "auditor", "demo", "--recorded", "--output-dir", str(report_dir), "--format", "html"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert code.returncode == 0, code.stderr
    out = work / "observed.json"
    shot = work / "screenshot.png"
    with namespace("kpa-browser") as ns:
        links = ns.run(["ip", "-o", "link", "show"])
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
        ns.run([sys.executable, str(SESSION), str(report_dir / "report.html"), str(out), str(shot)], timeout=180)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)
    result = json.loads(out.read_text())
    result["url"] = (report_dir / "report.html").resolve().as_uri()
    return result


def test_banner_and_findings(observed: dict) -> None:
    assert observed["verdict"] == "blocked"
    assert observed["banner"].startswith("BLOCKED") and "1 blocker" in observed["banner"] and "exit code 2" in observed["banner"]
    assert "KPA-008" in observed["findings"] and "KPA-009" in observed["findings"]
    assert observed["groups"][:2] == ["group-blocker", "group-warning"] and "group-skipped" in observed["groups"]
    assert observed["title"].startswith("kp-audit: Blocked: node ")


def test_services_table_and_search(observed: dict) -> None:
    assert len(observed["rows"]) == 12 and "showing 1–12 of 12" in observed["status"]
    assert observed["rows_svc9"] and all("svc9" in row for row in observed["rows_svc9"])
    assert len(observed["rows_svc9"]) < len(observed["rows"]) and "matching" in observed["status_svc9"]
    assert observed["rows_none"] == [] and observed["status_none"].startswith("no Service port matches")


def test_no_request_leaves_the_page(observed: dict) -> None:
    assert observed["requests"], "the performance log recorded no request at all"
    urls = [r["url"] for r in observed["requests"]]
    assert observed["url"] in urls  # the log works: it saw the page itself
    assert all(url.startswith(("file:", "data:")) for url in urls), urls
    assert observed["console"] == []  # no blocked resource, no CSP violation, no script error


def test_screenshot_saved(observed: dict) -> None:
    assert SCREENSHOT.exists() and SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
