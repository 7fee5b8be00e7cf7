"""`calsync demo`: a guided run of the whole system on embedded servers and the provider sandbox.

Each step prints the API call it made and what changed. A step whose route is not in this
build prints "skipped" and the demo goes on; a step that fails says why, and the exit code
counts it. Nothing here is used by the daemon itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import aiohttp

from worker.api.auth import mint_token
from worker.config import Settings, with_overrides
from worker.daemon import Running, running
from worker.db import status as status_repo
from worker.db.resources import create_resource
from worker.status_text import render

Say = Callable[[str], None]
COMPANY = "demo-company"
RESOURCE = "demo-resource"
ACCOUNTS = {"google": ("google", "dana@demo.test"), "outlook": ("microsoft", "lee@demo.test")}
WAIT_SECONDS = 20.0  # a step that waits for the daemon (sync, write) gives up after this
SHOWN_CHARS = 240  # JSON bodies are cut to this in the printout


class Skipped(Exception):
    """The route this step needs is not in this build."""


class StepFailed(Exception):
    """The step ran and did not get what it expected."""


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Tally:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def demo_settings(settings: Settings, data_dir: str) -> Settings:
    """Everything embedded and emulated: own data dir, free port, sandbox for both providers."""
    return with_overrides(
        settings,
        server={"host": "127.0.0.1", "port": 0, "public_url": ""},
        database={"url": ""},
        redis={"url": ""},
        embedded={"data_dir": data_dir},
        sandbox={"mode": "auto", "port": 0},
        google={"client_id": ""},
        outlook={"client_id": ""},
        auth={"jwt_secret": "", "admin_token": ""},
        crypto={"keys": []},
    )


def _shown(body: Any) -> str:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


class ConsentForm(HTMLParser):
    """The sandbox consent page's form: its action and hidden fields."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a.get("name", "")] = a.get("value", "")


class Demo:
    """The steps, sharing one HTTP session, the running daemon and a bearer token."""

    def __init__(self, run: Running, http: aiohttp.ClientSession, say: Say) -> None:
        self.run = run
        self.http = http
        self.say = say
        self.token = mint_token(run.deps.settings.auth, company_id=COMPANY, ttl_seconds=3600, now=int(time.time()))
        self.tomorrow = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), datetime.min.time(), UTC)

    async def call(self, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None) -> Answer:
        """One control-API call, printed as it goes; a 404 from the router means 'not in this build'."""
        query = "?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""
        self.say(f"  → {method} {path}{query}" + (f"  {_shown(body)}" if body is not None else ""))
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(method, self.run.url + path, json=body, params=params, headers=headers) as resp:
            data: Any = await resp.json(content_type=None) if resp.status != 204 else None
        self.say(f"  ← {resp.status}" + (f"  {_shown(data)}" if data is not None else ""))
        error = data.get("error", {}) if isinstance(data, dict) else {}
        if resp.status in (404, 405) and error.get("message") in ("Not Found", "Method Not Allowed"):
            raise Skipped(f"{method} {path} not available")
        return Answer(resp.status, data, dict(resp.headers))

    def expect(self, answer: Answer, *statuses: int) -> Any:
        if answer.status not in statuses:
            raise StepFailed(f"expected HTTP {'/'.join(map(str, statuses))}, got {answer.status}")
        return answer.body

    async def counts(self) -> dict[str, int]:
        async with self.run.deps.sessions.begin() as session:
            return await status_repo.resource_counts(session=session, resource_id=RESOURCE)

    async def until(self, what: str, check: Callable[[], Awaitable[bool]]) -> None:
        """Poll `check` until true or WAIT_SECONDS pass."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not await check():
            if time.monotonic() > deadline:
                raise StepFailed(f"{what}: not seen within {WAIT_SECONDS:g}s")
            await asyncio.sleep(0.2)

    # --- the steps -------------------------------------------------------------------------

    async def create_resource(self) -> None:
        body = {"id": RESOURCE, "name": "Dr. Demo", "timezone": "Europe/Berlin"}
        try:
            self.expect(await self.call("POST", "/v3/resource", body=body), 201)
        except Skipped:
            self.say("  (POST /v3/resource is not in this build: creating the row directly)")
            async with self.run.deps.sessions.begin() as session:
                await create_resource(
                    session=session, resource_id=RESOURCE, company_id=COMPANY, name="Dr. Demo", timezone="Europe/Berlin"
                )
        self.say(f"  changed: resource {RESOURCE} of company {COMPANY} exists (time zone Europe/Berlin)")

    async def connect(self, provider: str) -> None:
        sandbox = self.run.sandbox
        assert sandbox is not None
        sb_name, email = ACCOUNTS[provider]
        await sandbox.control.create_user(sb_name, email)
        self.say(f"  (the sandbox now has a {sb_name} account {email})")
        created = self.expect(
            await self.call("POST", f"/v3/resource/{RESOURCE}/externalCalendar", body={"provider": provider}), 201
        )
        callback = await self.consent(created["authUrl"], email)
        self.say(f"  → GET {callback.split('?')[0]}?code=…&state=…  (the browser returns from the consent page)")
        async with self.http.get(callback) as resp:
            page = await resp.text()
        self.say(f"  ← {resp.status}  {_shown(_title(page))}")
        listed = self.expect(await self.call("GET", f"/v3/resource/{RESOURCE}/externalCalendars"), 200)
        mine = next(c for c in listed["externalCalendars"] if c["id"] == created["id"])
        if mine["status"] != "active":
            raise StepFailed(f"the connection is {mine['status']}, not active")
        roles = ", ".join(f"{c['name'] or c['calendarId']} ({_role(c)})" for c in mine["calendars"])
        self.say(f"  changed: connection {mine['id']} is active for {mine['calendarEmail']}; calendars: {roles}")

    async def consent(self, auth_url: str, email: str) -> str:
        """Play the user on the sandbox consent page; return the callback URL it redirects to."""
        self.say(f"  → GET {auth_url.split('?')[0]}?…  (the user opens the authUrl)")
        async with self.http.get(auth_url) as resp:
            form = ConsentForm()
            form.feed(await resp.text())
        fields = form.fields | {"email": email, "decision": "allow"}
        action = urljoin(auth_url, form.action)
        self.say(f"  → POST {action.split('?')[0]}  (the user clicks Allow as {email})")
        async with self.http.post(action, data=fields, allow_redirects=False) as resp:
            location = resp.headers.get("Location", "")
        if not location:
            raise StepFailed("the consent page did not redirect back")
        return location

    async def external_events(self) -> None:
        sandbox = self.run.sandbox
        assert sandbox is not None
        start = self.tomorrow + timedelta(hours=9)
        google = {
            "summary": "Dentist",
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()},
        }
        later = self.tomorrow + timedelta(hours=13)
        outlook = {
            "subject": "Team offsite",
            "start": {"dateTime": later.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            "end": {"dateTime": (later + timedelta(hours=2)).replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
        }
        before = (await self.counts())["unavailability"]
        for provider, event in (("google", google), ("outlook", outlook)):
            sb_name, email = ACCOUNTS[provider]
            await sandbox.control.create_event(sb_name, email, event)
            title = event.get("summary") or event.get("subject")
            self.say(f"  → sandbox: {email} adds '{title}' to their {sb_name} calendar")

        async def synced() -> bool:
            return (await self.counts())["unavailability"] >= before + 2

        await self.until("the new events as unavailability", synced)
        self.say(f"  changed: unavailability rows for {RESOURCE}: {before} → {(await self.counts())['unavailability']}")

    async def bulk(self) -> None:
        today = date.today()
        params = {"startDate": today.isoformat(), "endDate": (today + timedelta(days=30)).isoformat()}
        path = f"/v3/resource/{RESOURCE}/externalCalendar/createUnavailabilityBulk"
        answer = self.expect(await self.call("POST", path, params=params), 200, 202)
        counts = ", ".join(f"{k} {v}" for k, v in (answer.get("totals") or {}).items())
        progress = answer.get("progress") or {}
        self.say(
            f"  changed: job {answer.get('status')}, {progress.get('calendarsDone')}/{progress.get('calendarsTotal')}"
            f" calendars listed over 30 days ({counts or 'no counts'}); rows already synced stay as they are"
        )

    async def appointment(self) -> None:
        start = self.tomorrow + timedelta(hours=11)
        body = {
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=45)).isoformat(),
            "status": "confirmed",
            "title": "Consultation with Sam",
            "version": 1,
        }
        self.expect(await self.call("PUT", f"/v3/resource/{RESOURCE}/appointments/demo-appt-1", body=body), 200, 202)

        async def written() -> bool:
            return (await self.counts())["written"] >= 1

        await self.until("the appointment on the write calendar", written)
        where = await self.find_written("Consultation with Sam")
        self.say(f"  changed: the appointment is an event on the write calendar ({where})")

    async def find_written(self, title: str) -> str:
        sandbox = self.run.sandbox
        assert sandbox is not None
        for sb_name, email in ACCOUNTS.values():
            for event in await sandbox.control.list_events(sb_name, email):
                if title in (event.get("summary"), event.get("subject")):
                    return f"{sb_name} account {email}, event {event.get('id')}"
        return "not found at the sandbox"

    async def availability(self) -> None:
        day = self.tomorrow.date()
        params = {
            "resourceId": RESOURCE,
            "startDate": day.isoformat(),
            "endDate": (day + timedelta(days=1)).isoformat(),
            "syncExternal": "true",
        }
        answer = self.expect(await self.call("GET", "/v3/availability", params=params), 200)
        for block in answer.get("busy", []):
            kinds = ", ".join(s.get("kind", "?") for s in block.get("sources", []))
            self.say(f"  busy {block['startLocal']} → {block['endLocal']}  ({kinds})")
        self.say(f"  free intervals: {len(answer.get('free', []))}")

    async def status(self) -> None:
        async with self.run.deps.sessions.begin() as session:
            summary = await status_repo.summary(session=session, now=datetime.now(UTC))
        for line in render(summary).splitlines():
            self.say("  " + line)
        self.say(f"  (the same page: {self.run.url}/status?token=<auth.admin_token>)")


def _title(page: str) -> str:
    start, end = page.find("<title>"), page.find("</title>")
    return page[start + 7 : end] if 0 <= start < end else page[:80]


def _role(calendar: dict[str, Any]) -> str:
    return "+".join(r for r in ("read", "write") if calendar.get(r)) or "unused"


STEPS: list[tuple[str, Callable[[Demo], Awaitable[None]]]] = [
    ("Create a resource", Demo.create_resource),
    ("Connect a Google calendar", lambda d: d.connect("google")),
    ("Connect an Outlook calendar", lambda d: d.connect("outlook")),
    ("Create external events; calsync syncs them", Demo.external_events),
    ("createUnavailabilityBulk over the next 30 days", Demo.bulk),
    ("Confirm an appointment; calsync writes it", Demo.appointment),
    ("Show availability for tomorrow", Demo.availability),
    ("Show the operator status", Demo.status),
]


async def run_demo(settings: Settings, say: Say) -> Tally:
    """Start everything, run each step, report; the daemon stops at the end."""
    tally = Tally()
    async with running(settings) as run, aiohttp.ClientSession() as http:
        sandbox_url = run.sandbox.url if run.sandbox else "(none)"
        say(f"calsync is running at {run.url}; provider sandbox at {sandbox_url}")
        say(f"embedded PostgreSQL and Redis keep their data in {settings.embedded.data_dir}")
        demo = Demo(run, http, say)
        for number, (title, step) in enumerate(STEPS, 1):
            say(f"\nStep {number}/{len(STEPS)}: {title}")
            try:
                await step(demo)
            except Skipped as exc:
                say(f"  skipped: {exc}")
                tally.skipped.append(title)
            except (StepFailed, aiohttp.ClientError, KeyError, StopIteration) as exc:
                say(f"  failed: {type(exc).__name__}: {exc}")
                tally.failed.append(title)
            else:
                tally.done.append(title)
    say(f"\ndemo finished: {len(tally.done)} done, {len(tally.skipped)} skipped, {len(tally.failed)} failed")
    return tally
