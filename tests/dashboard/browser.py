"""Headless Chromium through Selenium for the dashboard's browser tests, and reading the page.

``chrome()`` skips the calling test when Selenium, Chromium or its driver is not installed
(``pip install selenium``; Debian: ``apt-get install chromium chromium-driver``).
"""

import os
import shutil
import tempfile
import time

import pytest

FLAGS = (
    "--headless",
    "--no-sandbox",  # as root in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1700",
)


def chrome():
    """A headless Chromium driven by Selenium, with a fresh profile (quit it, and remove ``.profile``)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="the browser tests need Selenium")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("the browser tests need Chromium and chromedriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="convstack-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    driver.profile = profile
    return driver


def close(driver):
    driver.quit()
    shutil.rmtree(driver.profile, ignore_errors=True)


def wait_for(driver, script, timeout=30.0):
    """Poll the page with ``script`` (JavaScript returning a value) until it is truthy; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the page never satisfied: {script}")


RUN_ROW = """
const cells = document.querySelectorAll('#runs-body td[data-run="' + arguments[0] + '"]');
return Object.fromEntries(Array.from(cells, (c) => [c.dataset.field, c.textContent]));
"""

HISTORY = """
const cells = document.querySelectorAll('table[data-table="history"][data-run="' + arguments[0] + '"] td');
const rows = {};
for (const c of cells) (rows[c.dataset.epoch] = rows[c.dataset.epoch] || {})[c.dataset.field] = c.textContent;
return rows;
"""


def shown_number(text):
    """A value as the page shows it ('86.25%', '0.4121', '1,234') as a float (percentages as fractions)."""
    text = text.replace(",", "").strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(text.split()[0])


def check_history(driver, run_index, history):
    """The page's per-epoch table shows every row of ``history`` (to the digits it shows)."""
    rows = driver.execute_script(HISTORY, run_index)
    assert sorted(int(epoch) for epoch in rows) == [row["epoch"] for row in history]
    for row in history:
        shown = rows[str(row["epoch"])]
        for key, tolerance in (("loss", 5e-5), ("val_loss", 5e-5), ("acc", 5e-5), ("val_acc", 5e-5)):
            assert abs(shown_number(shown[key]) - row[key]) <= tolerance, (row["epoch"], key, shown[key], row[key])


def severe_console_messages(driver):
    """Errors the page logged (a script error, a refused resource, a CSP violation)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def save_screenshot(driver, path):
    driver.save_screenshot(str(path))
    target = os.environ.get("CONVSTACK_DASHBOARD_SCREENSHOT")
    if target:
        driver.save_screenshot(target)
