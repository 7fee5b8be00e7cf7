"""/status: a server-rendered HTML page for operators, behind the admin token.

The token comes as `Authorization: Bearer …` or, for a browser, `?token=…`. An empty
`auth.admin_token` disables the page (404). Every value is escaped; no token is ever shown.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from html import escape

from aiohttp import web

from worker.api.errors import NotFound, Unauthorized
from worker.api.keys import DEPS
from worker.db import status as status_repo
from worker.db.status import CalendarRow, Summary
from worker.metrics import REGISTRY
from worker.status_text import CONNECTION_STATUSES, ago, calendar_state, push_text, role, short

routes = web.RouteTableDef()

REFRESH_SECONDS = 30
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the URL may carry ?token=
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}
tr.failing,tr.reauth_required,tr.error{background:#fde2e2}tr.never_synced,tr.pending{background:#fff6d5}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}dd{margin:0}.note{color:#666}
"""


def _authorize(request: web.Request) -> None:
    """404 when the page is disabled, 401 unless the admin token matches (constant time)."""
    expected = request.app[DEPS].settings.auth.admin_token.get_secret_value()
    if not expected:
        raise NotFound("the status page is disabled (auth.admin_token is empty)")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header[:7].lower() == "bearer " else request.query.get("token", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("the admin token is missing or wrong")


@routes.get("/status")
async def status_page(request: web.Request) -> web.Response:
    """The operator summary as HTML."""
    _authorize(request)
    deps = request.app[DEPS]
    async with deps.sessions.begin() as session:
        summary = await status_repo.summary(session=session, now=deps.clock.now())
    body = render(summary, worker_id=deps.worker_id, heartbeat=_heartbeat())
    return web.Response(text=body, content_type="text/html", charset="utf-8", headers=HEADERS)


def _heartbeat() -> datetime | None:
    value = REGISTRY.get_sample_value("calsync_scheduler_last_heartbeat_timestamp_seconds")
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def render(summary: Summary, *, worker_id: str, heartbeat: datetime | None) -> str:
    """The whole page."""
    now = summary.generated_at
    sections = [_connections(summary), _calendars(summary), _outbox(summary), _deliveries(summary)]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'><title>calsync status</title>"
        f"<style>{STYLE}</style></head><body><h1>calsync status</h1>"
        f"<p id='generated' class='note'>Generated {escape(now.isoformat(timespec='seconds'))} by "
        f"<span id='worker-id'>{escape(worker_id)}</span>; scheduler heartbeat "
        f"<span id='heartbeat'>{escape(ago(now, heartbeat))}</span>.</p>"
        + "".join(sections)
        + f"<section id='quarantine'><h2>Quarantined events</h2><p><span id='quarantined-count'>"
        f"{summary.quarantined}</span> provider events could not be parsed.</p></section></body></html>"
    )


def _connections(summary: Summary) -> str:
    providers = sorted({p for p, _ in summary.connections} | {"google", "outlook"})
    head = "".join(f"<th>{escape(s)}</th>" for s in CONNECTION_STATUSES)
    rows = "".join(
        f"<tr class='connection-row' data-provider='{escape(p)}'><td>{escape(p)}</td>"
        + "".join(
            f"<td class='count' data-status='{s}'>{summary.connections.get((p, s), 0)}</td>"
            for s in CONNECTION_STATUSES
        )
        + "</tr>"
        for p in providers
    )
    totals = summary.connections_by_status()
    total_row = "<tr id='connection-totals'><th>all</th>" + "".join(
        f"<td class='total' data-status='{s}'>{totals.get(s, 0)}</td>" for s in CONNECTION_STATUSES
    )
    return (
        "<section id='connections'><h2>Connections</h2><table><thead><tr><th>provider</th>"
        f"{head}</tr></thead><tbody>{rows}{total_row}</tr></tbody></table></section>"
    )


CALENDAR_COLUMNS = (
    "link",
    "resource",
    "provider",
    "account",
    "calendar",
    "role",
    "state",
    "last sync",
    "failures",
    "next attempt",
    "last error",
    "push",
)


def _calendars(summary: Summary) -> str:
    now = summary.generated_at
    head = "".join(f"<th>{escape(c)}</th>" for c in CALENDAR_COLUMNS)
    rows = "".join(_calendar_row(row, now) for row in summary.calendars)
    if not rows:
        rows = f"<tr id='no-calendars'><td colspan='{len(CALENDAR_COLUMNS)}'>No calendars connected yet.</td></tr>"
    note = (
        f"<p class='note' id='calendars-shown'>Showing {len(summary.calendars)} of "
        f"<span id='calendars-total'>{summary.calendars_total}</span>, most troubled first.</p>"
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f"<section id='calendars'><h2>Calendars</h2>{note}{table}</section>"


def _calendar_row(row: CalendarRow, now: datetime) -> str:
    state = calendar_state(row)
    cells = [
        ("link-id", str(row.link_id)),
        ("resource", row.resource_id),
        ("provider", row.provider),
        ("account", row.account_email or ""),
        ("calendar-name", row.name or row.calendar_id),
        ("role", role(row)),
        ("state", state),
        ("last-sync", ago(now, row.last_synced_at)),
        ("failures", str(row.consecutive_failures)),
        ("next-attempt", ago(now, row.next_attempt_at, never="-")),
        ("last-error", short(row.last_error)),
        ("push", push_text(row, now)),
    ]
    tds = "".join(f"<td class='{cls}'>{escape(text)}</td>" for cls, text in cells)
    return f"<tr class='calendar {state}' data-link-id='{row.link_id}'>{tds}</tr>"


def _outbox(summary: Summary) -> str:
    out, now = summary.outbox, summary.generated_at
    items = [
        ("outbox-total", "appointment writes not done", str(out.total)),
        ("outbox-pending", "pending", str(out.by_state.get("pending", 0))),
        ("outbox-waiting-calendar", "waiting for a write calendar", str(out.by_state.get("waiting_calendar", 0))),
        ("outbox-failed", "failed", str(out.by_state.get("failed", 0))),
        ("outbox-oldest-age", "oldest", ago(now, out.oldest_enqueued_at, never="-")),
    ]
    return "<section id='outbox'><h2>Outbox</h2>" + _definitions(items) + "</section>"


def _deliveries(summary: Summary) -> str:
    items = [
        ("deliveries-pending", "pending", str(summary.deliveries.get("pending", 0))),
        ("deliveries-failed", "failed", str(summary.deliveries.get("failed", 0))),
    ]
    return "<section id='deliveries'><h2>Webhook deliveries to the main API</h2>" + _definitions(items) + "</section>"


def _definitions(items: list[tuple[str, str, str]]) -> str:
    pairs = "".join(f"<dt>{escape(label)}</dt><dd id='{ident}'>{escape(value)}</dd>" for ident, label, value in items)
    return f"<dl>{pairs}</dl>"
