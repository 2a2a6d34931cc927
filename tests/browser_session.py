"""Drive headless Chromium (Debian's chromium + chromium-driver, through Selenium) over one HTML
report and write what a user would see, as JSON. Run by tests/test_report_browser.py inside a
throwaway network namespace that has only loopback:

    python tests/browser_session.py REPORT.html OBSERVED.json SCREENSHOT.png
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1280,1600",
)


def _driver(profile: str) -> webdriver.Chrome:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def _rows(driver: webdriver.Chrome) -> list[str]:
    return [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#services-table tbody tr")]


def observe(report: Path, screenshot: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kpa-chromium-") as profile:
        driver = _driver(profile)
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.get("about:blank")
            driver.get_log("performance")  # drop what the browser's own start page asked for
            driver.get_log("browser")
            driver.get(report.resolve().as_uri())
            banner = driver.find_element(By.ID, "verdict")
            seen: dict[str, Any] = {
                "title": driver.title,
                "verdict": banner.get_attribute("data-verdict"),
                "banner": banner.text,
                "findings": [f.get_attribute("data-id") for f in driver.find_elements(By.CSS_SELECTOR, "details.finding")],
                "groups": [g.get_attribute("id") for g in driver.find_elements(By.CSS_SELECTOR, "#findings .group")],
                "rows": _rows(driver),
                "status": driver.find_element(By.ID, "services-status").text,
            }
            driver.save_screenshot(str(screenshot))
            search = driver.find_element(By.ID, "services-search")
            search.send_keys("svc9")
            seen["rows_svc9"] = _rows(driver)
            seen["status_svc9"] = driver.find_element(By.ID, "services-status").text
            search.clear()
            search.send_keys("no-such-service-anywhere")
            seen["rows_none"] = _rows(driver)
            seen["status_none"] = driver.find_element(By.ID, "services-status").text
            seen["requests"] = _requests(driver.get_log("performance"))
            # the browser's own pages (chrome://) may still log; what the report logs counts
            seen["console"] = [e["message"] for e in driver.get_log("browser") if not e["message"].startswith("chrome://")]
        finally:
            driver.quit()
    return seen


def _requests(log: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every request made after the report was opened, with the document that made it (CDP Network.requestWillBeSent)."""
    urls = []
    for entry in log:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            params = message["params"]
            urls.append({"url": params["request"]["url"], "document": params.get("documentURL", "")})
    return urls


def main(argv: list[str]) -> int:
    report, observed, screenshot = (Path(a) for a in argv[1:4])
    observed.write_text(json.dumps(observe(report, screenshot), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
