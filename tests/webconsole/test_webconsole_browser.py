"""The web console in a real browser (the distribution's headless Chromium): an invocation
appears live, opens, and replays after a real edit and hot reload with the new result shown
beside the old. Set PYLIVE_CONSOLE_SCREENSHOT to a path to keep a screenshot (docs/ has one:
scripts/console-screenshot)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from apphelpers import Running, copy_app, create_app, http, pylive_cmd

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("PYLIVE_CHROMIUM", "/usr/bin/chromium")
# What works as root in a container: no sandbox, no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ITEMS_V2 = (
    "def handler(event, context):\n"
    "    print('version two', event['pathParameters']['id'])\n"
    "    return {'id': event['pathParameters']['id'], 'version': 2}\n"
)
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def template_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_app(tmp_path_factory.mktemp("app") / "demo")


@pytest.fixture
def browser() -> Iterator[object]:
    # Loud, never a skip: CI installs Chromium (.ci/run) and this test must run there.
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Each launch gets a fresh --user-data-dir from Playwright itself.
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


def test_console_shows_an_invocation_live_and_replays_it_on_new_code(
    browser: object, template_app: Path, tmp_path: Path
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    app = copy_app(template_app, tmp_path / "demo")
    running = Running(pylive_cmd("dev", "--local", "--port", "0", "--relay"), cwd=app)
    try:
        url = running.wait_line(r"on (http://127\.0\.0\.1:\d+)", timeout=120).group(1)
        console = running.wait_line(r"^Console: (http://127\.0\.0\.1:\d+/\?token=\S+)$").group(1)
        page = browser.new_page(viewport={"width": 1360, "height": 820})
        page.set_default_timeout(WAIT_MS)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(console)
        expect(page.locator("#conn")).to_have_text("live")
        expect(page.locator("#empty")).to_be_visible()

        # A request after the page loaded appears without a reload.
        assert http("POST", url + "/items/42", body=b'{"name": "pen"}')[0] == 200
        row = page.locator("#list tbody tr", has_text="items")
        expect(row).to_have_count(1)
        row = page.locator(f"#list tbody tr[data-id='{row.get_attribute('data-id')}']")
        expect(row.locator(".status")).to_have_text("200")
        for path in ("/?name=Ada", "/boom", "/?name=Grace"):
            http("GET", url + path)
        expect(page.locator("#list tbody tr")).to_have_count(4)
        expect(page.locator("#list tbody tr[data-status=error]")).to_have_count(1)
        expect(page.locator("#latency circle.point")).to_have_count(4)

        # Open it: event, result, output, and the command to run it again.
        row.click()
        expect(page.locator("#detail-event")).to_contain_text('"id": "42"')
        expect(page.locator("#detail-result")).to_contain_text("pen")
        expect(page.locator("#detail-output")).to_have_text("creating 42")
        expect(page.locator("#copy-command")).to_contain_text("pylive invoke items --event '")

        # Change the handler for real; once reloaded, replay shows the new result by the old.
        (app / "functions/items.py").write_text(ITEMS_V2)
        running.wait_line(r"items: reloaded in \d+ ms")
        page.locator("#replay").click()
        expect(page.locator("#replay-verdict")).to_have_text("result changed")
        expect(page.locator("#replay-old")).to_contain_text("pen")
        expect(page.locator("#replay-new")).to_contain_text('"version": 2')
        expect(page.locator("#list tbody tr .tag.replay")).to_have_count(1)
        running.wait_line(r"^POST /items/42 -> items 200 [\d.]+ ms \w+.*\(replay\)$")

        # Filters narrow the list.
        page.select_option("#filter-function", "items")
        expect(page.locator("#list tbody tr")).to_have_count(2)
        page.select_option("#filter-function", "")
        page.select_option("#filter-status", "error")
        expect(page.locator("#list tbody tr")).to_have_count(1)
        page.select_option("#filter-status", "")
        page.fill("#filter-text", "Grace")
        expect(page.locator("#list tbody tr")).to_have_count(1)
        page.fill("#filter-text", "")
        expect(page.locator("#list tbody tr")).to_have_count(5)

        row.click()
        expect(page.locator("#detail-output")).to_have_text("creating 42")
        page.locator("#replay").click()
        expect(page.locator("#replay-verdict")).to_have_text("result changed")
        # Everything the page loaded came from the console itself: no CDN, works offline.
        base = console.split("/?")[0] + "/"
        assert requested and all(url.startswith(base) for url in requested), requested
        shot = Path(os.environ.get("PYLIVE_CONSOLE_SCREENSHOT") or tmp_path / "console.png")
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        running.stop()
