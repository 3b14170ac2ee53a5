"""The live page in a real browser (headless Chromium): what it shows is what the run wrote.

Skipped without Selenium, Chromium or chromedriver (``.ci/run`` installs them).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tests.dashboard.browser import (
    RUN_ROW,
    check_history,
    chrome,
    close,
    save_screenshot,
    severe_console_messages,
    shown_number,
    wait_for,
)
from tests.dashboard.conftest import read_events, recorded_trainer

from convstack.dashboard import DashboardServer
from convstack.train import Callback

SOURCE = str(Path(__file__).resolve().parents[2] / "src")

CONFUSION = """
const rows = {};
for (const c of document.querySelectorAll('#confusion td'))
  (rows[c.dataset.true] = rows[c.dataset.true] || [])[c.dataset.predicted] = Number(c.textContent);
return Object.keys(rows).sort((a, b) => a - b).map((k) => rows[k]);
"""
PICTURES_LOADED = """
const images = [document.getElementById('filters'), document.getElementById('feature-maps'),
                 ...document.querySelectorAll('#misclassified img')];
return images.every((i) => i.complete && i.naturalWidth > 0) ? images.length : 0;
"""
CHART_PIXELS = """
const canvas = document.getElementById(arguments[0]);
const [red, green, blue] = arguments[1];
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let count = 0;
for (let i = 0; i < data.length; i += 4)
  if (Math.abs(data[i] - red) < 40 && Math.abs(data[i + 1] - green) < 40 && Math.abs(data[i + 2] - blue) < 40) count++;
return count;
"""
FIRST_RUN, SECOND_RUN = (31, 119, 180), (214, 39, 40)  # the page's first two colours


@pytest.fixture(scope="module")
def driver():
    driver = chrome()
    yield driver
    close(driver)


def test_a_finished_run_as_recorded(driver, recorded_run):
    out, trainer = recorded_run
    with DashboardServer([out], port=0) as server:
        driver.get(server.url)
        wait_for(driver, "return document.querySelectorAll('table[data-table=history] tr').length === 4")
        row = driver.execute_script(RUN_ROW, 0)
        assert row["name"] == out.name and row["status"] == "finished" and row["epoch"] == "3/3"
        last = trainer.history[-1]
        assert abs(shown_number(row["val_acc"]) - last["val_acc"]) <= 5e-5
        assert abs(shown_number(row["loss"]) - last["loss"]) <= 5e-5
        check_history(driver, 0, trainer.history)
        record = [e for e in read_events(out) if e["type"] == "epoch"][-1]
        confusion = json.loads((out / record["confusion"]).read_text())
        assert wait_for(driver, "return document.querySelectorAll('#confusion td').length") == 4
        assert driver.execute_script(CONFUSION) == confusion
        captions = [e.text for e in driver.find_elements("css selector", "#misclassified figcaption")]
        assert captions == [f"{m['predicted']} (true: {m['true']})" for m in record["misclassified"]]
        assert wait_for(driver, PICTURES_LOADED) == 2 + len(record["misclassified"])
        summary = wait_for(driver, "return document.querySelector('#summaries pre')?.textContent")
        assert "Conv2d" in summary
        assert driver.execute_script(CHART_PIXELS, "chart-loss", FIRST_RUN) > 100
        assert driver.execute_script(CHART_PIXELS, "chart-acc", FIRST_RUN) > 100
        assert severe_console_messages(driver) == []


def test_runs_overlaid_one_with_its_history_alone(driver, recorded_run, tmp_path):
    out, trainer = recorded_run
    plain = tmp_path / "plain"  # the Trainer's history.json only: no live records
    other, _, _ = recorded_trainer(tmp_path / "recorded-elsewhere", epochs=2)
    shutil.copytree(tmp_path / "recorded-elsewhere", plain, ignore=shutil.ignore_patterns("live"))
    with DashboardServer([out, plain], port=0) as server:
        driver.get(server.url)
        wait_for(driver, "return document.querySelectorAll('table[data-table=history] tr').length === 4 + 3")
        assert driver.execute_script(RUN_ROW, 1)["status"] == "history"
        assert driver.execute_script(RUN_ROW, 1)["epoch"] == "2/2"  # planned epochs from config.json
        check_history(driver, 0, trainer.history)
        check_history(driver, 1, other.history)
        for chart in ("chart-loss", "chart-acc", "chart-lr", "chart-speed"):
            assert driver.execute_script(CHART_PIXELS, chart, SECOND_RUN) > 20, chart
        assert severe_console_messages(driver) == []


class Slow(Callback):
    """Slows training down so that the page sees it go by."""

    def on_batch_end(self, trainer, batch, logs):
        time.sleep(0.2)


def test_the_page_follows_training_as_it_runs(driver, tmp_path):
    out = tmp_path / "live-run"
    with DashboardServer([out], port=0, poll_interval=0.1) as server:
        driver.get(server.url + "?interval=0.5")  # redraw every 0.5 s (default 2 s): a short run shows more
        wait_for(driver, "return document.getElementById('status').textContent.startsWith('live')")
        training = threading.Thread(target=recorded_trainer, args=(out,), kwargs={"epochs": 4, "callbacks": [Slow()]})
        training.start()
        seen = []
        while training.is_alive():
            seen.append(driver.execute_script(RUN_ROW, 0))
            time.sleep(0.2)
        training.join()
        during = [row for row in seen if row.get("status") == "training"]
        assert len({row["step"] for row in during}) >= 3  # it moved within epochs ...
        assert len({row["epoch"] for row in during}) >= 3  # ... and from epoch to epoch
        assert len({row["step_loss"] for row in during}) >= 3
        assert any(row["eta"] not in ("–", "0s") for row in during)
        wait_for(driver, "return document.querySelector('td[data-field=epoch]')?.textContent === '4/4'")
        history = json.loads((out / "history.json").read_text())
        check_history(driver, 0, history)
    wait_for(driver, "return document.getElementById('status').textContent.startsWith('server stopped')")
    check_history(driver, 0, history)  # the page keeps what it showed
    assert severe_console_messages(driver) == []
    save_screenshot(driver, tmp_path / "dashboard.png")
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


@pytest.mark.slow
def test_convstack_train_live_on_fashion_mnist(driver, tmp_path):
    """`convstack train --live` (LeNet-5, the Fashion-MNIST found, 20,000 images, 6 epochs) watched
    in the browser; with CONVSTACK_DASHBOARD_SCREENSHOT=FILE the final page is saved there."""
    out = tmp_path / "lenet5"
    command = [sys.executable, "-m", "convstack", "train", "--live", "--port", "0", "--epochs", "6",
               "--limit-train", "20000", "--out", str(out), "--no-progress"]  # fmt: skip
    environment = dict(os.environ, PYTHONPATH=SOURCE)
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment)
    url = None
    for line in process.stderr:
        match = re.search(r"live page: (\S+)", line)
        if match:
            url = match.group(1)
            break
    assert url, "no URL printed"
    driver.get(url)
    seen = []
    while process.poll() is None:
        seen.append(driver.execute_script(RUN_ROW, 0))
        time.sleep(0.5)
    process.communicate(timeout=60)
    assert process.returncode == 0
    assert len({row.get("epoch") for row in seen if row.get("status") == "training"}) >= 3
    wait_for(driver, "return document.getElementById('status').textContent.startsWith('server stopped')")
    check_history(driver, 0, json.loads((out / "history.json").read_text()))
    results = json.loads((out / "results.json").read_text())
    shown = driver.execute_script("return document.querySelector('td[data-field=test_accuracy]').textContent")
    assert abs(shown_number(shown) - results["test_accuracy"]) <= 5e-5
    driver.execute_script("window.scrollTo(0, 0)")
    save_screenshot(driver, tmp_path / "dashboard.png")
