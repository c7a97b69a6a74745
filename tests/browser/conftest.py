"""Browser tests: Debian's chromium driven by Playwright for Python, against a real server.

No browser download (never `playwright install`): CI installs Debian's `chromium` package.
A missing chromium FAILS the run with the command to fix it; nothing is skipped.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("POCKETCLOUD_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's package (apt-get install -y chromium) "
                    "or set POCKETCLOUD_CHROMIUM; browser tests never download a browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright for Python is missing: pip install -e '.[test]' (never run `playwright install`)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(base_url=server.console_url, viewport={"width": 1360, "height": 900})
    ctx.set_default_timeout(20000)
    pg = ctx.new_page()
    pg.on("dialog", lambda d: d.accept())  # the console confirms before terminate/delete
    yield pg
    ctx.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, api) -> None:
    page.goto("/ui/login")
    page.fill("input[name=access_key_id]", api.key_id)
    page.fill("input[name=secret_access_key]", api.secret)
    page.click("button:has-text('Sign in')")
    page.wait_for_url("**/ui/instances")


class Timings:
    """Page load times collected across tests, written next to the screenshots."""
    data: dict[str, list[float]] = {}

    @classmethod
    def add(cls, name: str, ms: float) -> None:
        cls.data.setdefault(name, []).append(ms)

    @classmethod
    def write(cls) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        summary = {k: {"median_ms": round(statistics.median(v), 1), "runs_ms": [round(x, 1) for x in v]}
                   for k, v in cls.data.items()}
        (SHOTS.parent / "browser-timings.json").write_text(json.dumps(summary, indent=2))


@pytest.fixture(scope="session", autouse=True)
def _timings():
    yield
    if Timings.data:
        Timings.write()


def load_ms(page) -> float:
    """Navigation start to load event of the current page, from the browser's own timing."""
    return page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                         " return n.loadEventEnd - n.startTime; }")
