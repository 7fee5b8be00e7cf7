"""The operator summary in words: the wording /status shares, and `calsync status`'s terminal text."""

from __future__ import annotations

from datetime import datetime

from worker.db.status import CalendarRow, Summary

CONNECTION_STATUSES = ("pending", "active", "reauth_required", "error")
ERROR_CHARS = 200  # enough to recognise an error; the full text is in the logs


def ago(now: datetime, then: datetime | None, *, never: str = "never") -> str:
    """A short relative time: '42s ago', '3m ago', 'in 5h', 'never'."""
    if then is None:
        return never
    seconds = (now - then).total_seconds()
    text = _span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def calendar_state(row: CalendarRow) -> str:
    """One word for a calendar's health: reauth_required/error/pending, failing, never_synced, ok."""
    if row.connection_status != "active":
        return row.connection_status
    if row.consecutive_failures:
        return "failing"
    if row.read and row.last_synced_at is None:
        return "never_synced"
    return "ok"


def role(row: CalendarRow) -> str:
    return "+".join(r for r, on in (("read", row.read), ("write", row.write)) if on) or "unused"


def push_text(row: CalendarRow, now: datetime) -> str:
    """The push channel or subscription and when it expires ('none' when polled)."""
    if row.push_kind is None:
        return "none (polled)" if row.read else "none (write only)"
    expiry = row.push_expires_at
    when = "expired " + ago(now, expiry) if expiry is not None and expiry <= now else "expires " + ago(now, expiry)
    return f"{row.push_kind}, {when}" + (f" (error: {short(row.push_error)})" if row.push_error else "")


def short(text: str | None) -> str:
    if not text:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def render(summary: Summary) -> str:
    """The summary as plain text for a terminal."""
    now = summary.generated_at
    by_status = summary.connections_by_status()
    lines = [f"calsync status at {now.isoformat(timespec='seconds')}", "", "Connections"]
    lines += [f"  {s:<16} {by_status.get(s, 0)}" for s in CONNECTION_STATUSES]
    lines += ["", f"Calendars ({len(summary.calendars)} of {summary.calendars_total}, most troubled first)"]
    lines += [_calendar_line(row, now) for row in summary.calendars] or ["  (none)"]
    out = summary.outbox
    lines += ["", "Outbox"]
    lines += [f"  total {out.total}, oldest {ago(now, out.oldest_enqueued_at, never='-')}"]
    lines += [f"  {state:<16} {out.by_state.get(state, 0)}" for state in ("pending", "waiting_calendar", "failed")]
    lines += ["", "Webhook deliveries"]
    lines += [f"  pending {summary.deliveries.get('pending', 0)}, failed {summary.deliveries.get('failed', 0)}"]
    lines += ["", f"Quarantined events: {summary.quarantined}"]
    return "\n".join(lines)


def _calendar_line(row: CalendarRow, now: datetime) -> str:
    head = f"  #{row.link_id} {row.provider:<7} {row.resource_id} {row.name or row.calendar_id} [{role(row)}]"
    parts = [
        calendar_state(row),
        f"synced {ago(now, row.last_synced_at)}",
        f"push {push_text(row, now)}",
    ]
    if row.consecutive_failures:
        parts.append(f"{row.consecutive_failures} failures, next {ago(now, row.next_attempt_at, never='-')}")
    if row.last_error:
        parts.append(f"error: {short(row.last_error)}")
    return head + "\n      " + "; ".join(parts)
