"""End to end in a real browser: `streamlit run app.py` on 127.0.0.1, driven by Debian's chromium.

Screenshots go to $BRAT_SCREENSHOTS (default: the test's temporary folder).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from brat import CLASSES
from tests.conftest import BRAIN_MRI
from tests.synthetic import make_slice

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 180_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(cwd: Path, env: dict[str, str]):
    """`streamlit run app.py` in `cwd` on a free port of 127.0.0.1; yields its URL once healthy."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    process = subprocess.Popen(
        [*command, "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("streamlit did not start within 90 s")
            time.sleep(0.5)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(toy_dataset, tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-home")
    env = {**os.environ, "BRAT_HOME": str(home), "BRAT_DATA": str(toy_dataset)}
    with streamlit_app(ROOT, env) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("BRAT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_diagnose_shows_label_heatmap_and_a_clear_error(server, page, shots, tmp_path) -> None:
    import cv2

    broken = tmp_path / "broken.jpg"
    real = BRAIN_MRI / "pituitary_tumor" / "fs0931.jpg"  # a held-out test scan
    if real.is_file():
        scan, expected = real, {"pituitary_tumor"}
    else:  # without ../shared: a generated slice, which may well be called "not a brain MRI"
        scan = tmp_path / "scan.png"
        cv2.imwrite(str(scan), make_slice(7, size=256))
        expected = {*CLASSES, "uncertain", "not a brain MRI"}
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    page.goto(f"{server}/diagnose")
    page.get_by_text("Drop one or more scans").wait_for()
    page.locator("input[type=file]").set_input_files(str(scan))
    page.get_by_text("Heatmap overlay").wait_for()
    page.get_by_text("calibrated probability").first.wait_for()
    assert page.locator('[data-testid="stMetricValue"]').first.inner_text() in expected
    assert page.locator('[data-testid="stImage"] img').count() >= 2  # original and overlay
    page.screenshot(path=str(shots / "diagnose.png"), full_page=True)

    page.locator("input[type=file]").set_input_files(str(broken))  # added to the uploads
    page.get_by_text("Scan to inspect").wait_for()
    page.locator('[data-testid="stSelectbox"]', has_text="Scan to inspect").click()
    page.get_by_role("option", name="broken.jpg").click()
    page.locator('[data-testid="stAlert"]', has_text="broken.jpg").wait_for()
    assert "Traceback" not in page.content()
    page.screenshot(path=str(shots / "diagnose-error.png"), full_page=True)


def choose(page, box, option: str) -> None:
    """Open a select box and pick an option; a click that lands while the page is still
    rerendering (a fresh clone's cold start) leaves the list closed, so it is tried again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=30_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    raise AssertionError(f"the option {option} never appeared")


def test_train_starts_and_stops_a_run(server, page, shots) -> None:
    page.goto(f"{server}/train")
    form = page.locator('[data-testid="stForm"]')
    form.wait_for()
    for label, option in (("Input size (px)", "96"), ("Width (alpha)", "0.35")):
        choose(page, form.locator('[data-testid="stSelectbox"]', has_text=label), option)
    form.get_by_role("spinbutton", name="Epochs").fill("20")
    form.get_by_role("textbox", name="Initial weights").fill("none")
    form.get_by_role("textbox", name="Run name (optional)").fill("browser-run")
    form.get_by_role("button", name="Start training").click()
    page.get_by_text("Run browser-run").wait_for()
    page.get_by_role("button", name="Stop after this batch").wait_for()
    page.get_by_text("batch 1 of").wait_for()  # a batch has run: the live view moves
    page.screenshot(path=str(shots / "train-running.png"), full_page=True)
    second_tab = page.context.browser.new_page()  # another session sees the same run
    second_tab.goto(f"{server}/train")
    second_tab.get_by_text("Run browser-run").wait_for()
    second_tab.get_by_role("button", name="Stop after this batch").wait_for()
    second_tab.close()
    page.get_by_role("button", name="Stop after this batch").click()
    page.get_by_text("Stopped").first.wait_for()
    page.screenshot(path=str(shots / "train-stopped.png"), full_page=True)
    assert "Traceback" not in page.content()
