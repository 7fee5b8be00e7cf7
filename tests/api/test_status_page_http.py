"""/status over plain HTTP: admin-token gate, every section, escaping, no secrets."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import aiohttp
import pytest

from tests.conftest import Api, make_deps, serve_api
from tests.status_data import HOSTILE, Seeded, seed_status
from worker.config import with_overrides

ADMIN = "test-admin-token"


class Ids(HTMLParser):
    """Collects element ids and the text under each of them."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids[str(a["id"])] = ""
            self._open.append(str(a["id"]))
        elif tag in ("span", "dd", "p", "tr", "section"):
            self._open.append("")
        if tag == "tr" and "calendar" in (a.get("class") or "").split():
            self.rows.append({"class": a.get("class") or "", "link": a.get("data-link-id") or ""})

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "dd", "p", "tr", "section") and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for ident in self._open:
            if ident:
                self.ids[ident] += data


@pytest.fixture(scope="module")
async def seeded(api: Api) -> Seeded:
    return await seed_status(api.deps.sessions, api.deps.clock.now())


async def test_status_needs_the_admin_token(api: Api, seeded: Seeded) -> None:
    for headers, params in (({}, {}), ({"Authorization": "Bearer nope"}, {}), ({}, {"token": "nope"})):
        async with api.session.get(f"{api.url}/status", headers=headers, params=params) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_status_is_404_when_no_admin_token_is_configured(api: Api) -> None:
    deps = make_deps(
        with_overrides(api.deps.settings, auth={"admin_token": ""}), api.deps.engine, api.deps.redis, api.session
    )
    async with serve_api(deps) as url, aiohttp.ClientSession() as s, s.get(f"{url}/status?token=") as resp:
        assert resp.status == 404


async def test_status_page_shows_every_section(api: Api, seeded: Seeded) -> None:
    async with api.session.get(f"{api.url}/status", headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert resp.headers["Cache-Control"] == "no-store"
        html = await resp.text()
    page = Ids()
    page.feed(html)
    for section in ("connections", "calendars", "outbox", "deliveries", "quarantine"):
        assert section in page.ids, section
    totals = dict(re.findall(r"class='total' data-status='(\w+)'>(\d+)<", html))
    assert totals == {"pending": "0", "active": "1", "reauth_required": "1", "error": "0"}
    assert page.ids["outbox-total"] == "2"
    assert page.ids["outbox-waiting-calendar"] == "1"
    assert page.ids["outbox-oldest-age"] == "10m ago"
    assert page.ids["deliveries-pending"] == "1" and page.ids["deliveries-failed"] == "1"
    assert page.ids["quarantined-count"] == "1"
    assert page.ids["calendars-total"] == "3"
    by_link = {r["link"]: r["class"] for r in page.rows}
    assert by_link[str(seeded.failing_link)] == "calendar failing"
    assert by_link[str(seeded.ok_link)] == "calendar ok"
    assert by_link[str(seeded.write_link)] == "calendar reauth_required"
    # The most troubled calendar comes first.
    assert page.rows[0]["link"] == str(seeded.failing_link)


async def test_status_page_escapes_and_hides_the_token(api: Api, seeded: Seeded) -> None:
    async with api.session.get(f"{api.url}/status", params={"token": ADMIN}) as resp:
        assert resp.status == 200
        html = await resp.text()
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html
    assert ADMIN not in html
    assert re.search(r"google_channel, expires in (29|30)m", html)
