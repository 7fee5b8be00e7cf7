"""/status in a real headless browser (Debian's chromium driven by Playwright).

Skipped, with the reason, where chromium or Playwright is missing: `make test` must pass on a
fresh machine. Install with `apt-get install chromium` (Playwright comes with the dev extra).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Api
from tests.status_data import HOSTILE, Seeded, seed_status

ADMIN = "test-admin-token"
CHROMIUM = os.environ.get("CALSYNC_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium binary (apt-get install chromium) for the headless browser test"
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api", reason="playwright is not installed")
    async with playwright_api.async_playwright() as pw:
        # Debian's build, not a downloaded one; no sandbox because tests may run as root.
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        await browser.close()


@pytest.fixture(scope="module")
async def seeded(api: Api) -> Seeded:
    return await seed_status(api.deps.sessions, api.deps.clock.now())


async def test_status_page_renders_in_chromium(browser: Any, api: Api, seeded: Seeded) -> None:
    page = await browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    response = await page.goto(f"{api.url}/status?token={ADMIN}")
    assert response is not None and response.status == 200
    assert await page.title() == "calsync status"
    for section in ("#connections", "#calendars", "#outbox", "#deliveries", "#quarantine"):
        assert await page.locator(section).is_visible(), section

    assert await page.locator("#connection-totals td[data-status='reauth_required']").inner_text() == "1"
    assert await page.locator("tr.calendar").count() == 3
    failing = page.locator(f"tr.calendar[data-link-id='{seeded.failing_link}']")
    assert "failing" in (await failing.get_attribute("class") or "")
    assert await failing.locator("td.failures").inner_text() == "3"
    # The hostile calendar name is shown as text, never run as a script.
    assert HOSTILE in await failing.locator("td.calendar-name").inner_text()
    assert await page.locator("script").count() == 0 and dialogs == []
    ok = page.locator(f"tr.calendar[data-link-id='{seeded.ok_link}']")
    assert (await ok.locator("td.push").inner_text()).startswith("google_channel, expires in")
    assert await page.locator("#outbox-total").inner_text() == "2"
    assert await page.locator("#outbox-waiting-calendar").inner_text() == "1"
    assert await page.locator("#deliveries-failed").inner_text() == "1"
    assert await page.locator("#quarantined-count").inner_text() == "1"
    assert ADMIN not in await page.content()
    await page.close()


async def test_status_page_without_token_is_refused_in_the_browser(browser: Any, api: Api) -> None:
    page = await browser.new_page()
    response = await page.goto(f"{api.url}/status")
    assert response is not None and response.status == 401
    assert "calsync status" not in await page.content()
    await page.close()
