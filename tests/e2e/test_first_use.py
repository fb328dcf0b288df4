"""A newcomer's first minutes, in a real browser: a clean copy of the repository with no
../shared beside it, no settings and an empty home, started with the README's command.

It clicks a bundled sample scan on Diagnose and waits for its label and heatmap, then opens
Dataset, Train and Evaluate, which must show the bundled demo instead of an empty path box. The
time from the click to the result is written to $BRAT_SCREENSHOTS/first-use.json with the
screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_browser import CHROMIUM, ROOT, TIMEOUT_MS, streamlit_app

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def clean_copy(destination: Path) -> Path:
    """The files a clone of this working tree has (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def fresh_app(tmp_path_factory):
    """`streamlit run app.py` in a clean copy, with a fresh home and cache and nothing set."""
    base = tmp_path_factory.mktemp("fresh")
    clone = clean_copy(base / "clone")
    home = base / "home"
    home.mkdir()
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env |= {"HOME": str(home), "BRAT_SHARED": str(base / "no-shared")}
    with streamlit_app(clone, env) as url:
        yield url


def test_a_newcomer_sees_a_sample_result_and_the_demo_pages(fresh_app, tmp_path_factory) -> None:
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("BRAT_SCREENSHOTS") or tmp_path_factory.mktemp("first-use"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        started = time.monotonic()
        page.goto(f"{fresh_app}/diagnose")
        button = page.get_by_role("button", name="Analyse the sample")
        button.wait_for()
        page_shown = time.monotonic() - started
        clicked = time.monotonic()
        button.click()
        page.get_by_text("Heatmap overlay").wait_for()
        to_result = time.monotonic() - clicked  # the verdict, set and heatmap are shown
        page.locator(".js-plotly-plot").first.wait_for()
        to_chart = time.monotonic() - clicked  # the probability chart, drawn last
        verdict = page.locator('[data-testid="stMetricValue"]').first.inner_text()
        assert verdict in {"glioma_tumor", "meningioma_tumor", "pituitary_tumor", "no_tumor"} | {
            "uncertain",
            "not a brain MRI",
        }
        assert page.locator('[data-testid="stImage"] img').count() >= 2  # original and overlay
        page.screenshot(path=str(shots / "first-use-diagnose.png"), full_page=True)

        demo_pages = (
            ("dataset", "Images per class and view plane"),
            ("train", "Start training"),
            ("evaluate", "Accuracy"),
        )
        for name, expected in demo_pages:
            page.goto(f"{fresh_app}/{name}")
            page.get_by_text("Showing the bundled demo").first.wait_for()
            page.get_by_text(expected).first.wait_for()
            page.wait_for_timeout(1500)  # tables and charts draw after the text
            page.screenshot(path=str(shots / f"first-use-{name}.png"), full_page=True)
            assert "Traceback" not in page.content()
        browser.close()
    timings = {
        "page_shown_s": round(page_shown, 2),
        "click_to_result_s": round(to_result, 2),
        "click_to_chart_s": round(to_chart, 2),
    }
    (shots / "first-use.json").write_text(json.dumps(timings))
    print(timings)
